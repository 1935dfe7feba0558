"""Forms whose input needs more than one line of reading: the try-it query."""

from __future__ import annotations

import re

from django import forms

HISTORY_SEPARATORS = re.compile(r"[\s,;]+")


class TryForm(forms.Form):
    """A recommendation request as a person types it: raw item ids, oldest first."""

    dataset = forms.TypedChoiceField(coerce=int, label="dataset")
    history = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "item ids, oldest first: i3 i7 i12"}),
        label="history",
        help_text="raw item ids as in the uploaded log, separated by spaces or commas, oldest first",
    )
    k = forms.IntegerField(initial=10, label="how many")
    exclude_seen = forms.BooleanField(required=False, initial=True, label="leave out items in the history")

    def __init__(self, *args, datasets: list, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [(d.pk, f"#{d.pk} {d.name}") for d in datasets]

    def clean_history(self) -> list[str]:
        items = [item for item in HISTORY_SEPARATORS.split(self.cleaned_data["history"]) if item]
        if not items:
            raise forms.ValidationError("type at least one item id")
        return items
