"""Forms whose input needs more than one line of reading: the try-it query."""

from __future__ import annotations

import re

from django import forms

HISTORY_SEPARATORS = re.compile(r"[\s,;]+")
# Far above any model's reading length (it reads the last max_len items); a bound on the work a
# typed request makes (dropping unknown ids, excluding seen ones), not on what the model sees.
HISTORY_MAX_ITEMS = 10_000


class TryForm(forms.Form):
    """A recommendation request as a person types it: raw item ids, oldest first.

    ``max_k`` (the version's top-k size) bounds ``k``; ``max_len`` (how many of the most recent
    items the model reads) is said in the history's help text. Both come from the loaded version.
    """

    dataset = forms.TypedChoiceField(coerce=int, label="dataset", widget=forms.HiddenInput)
    history = forms.CharField(
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "item ids, oldest first: i3 i7 i12", "spellcheck": "false"}
        ),
        label="history",
        error_messages={"required": "type at least one item id"},
    )
    k = forms.IntegerField(
        initial=10,
        min_value=1,
        label="how many",
        error_messages={
            "required": "say how many items to recommend",
            "invalid": "a whole number, please",
            "min_value": "at least 1",
        },
    )
    exclude_seen = forms.BooleanField(required=False, initial=True, label="leave out items in the history")

    def __init__(
        self, *args, datasets: list, max_k: int | None = None, max_len: int | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [(d.pk, f"#{d.pk} {d.name}") for d in datasets]
        self.max_k = max_k
        reads = f"the model reads the last {max_len} of them" if max_len else "the most recent ones count"
        help_text = (
            f"raw item ids as in the uploaded log, oldest first, separated by spaces or commas; {reads}"
        )
        self.fields["history"].help_text = help_text
        if max_k:
            self.fields["k"].widget.attrs.update(max=max_k, min=1)
            self.fields["k"].help_text = f"1 to {max_k}"

    def clean_history(self) -> list[str]:
        items = [item for item in HISTORY_SEPARATORS.split(self.cleaned_data["history"]) if item]
        if not items:
            raise forms.ValidationError("type at least one item id")
        if len(items) > HISTORY_MAX_ITEMS:
            raise forms.ValidationError(
                f"at most {HISTORY_MAX_ITEMS:,} item ids (this history has {len(items):,}); "
                "the model reads only the most recent ones anyway"
            )
        return items

    def clean_k(self) -> int:
        k = self.cleaned_data["k"]
        if self.max_k and k > self.max_k:
            raise forms.ValidationError(f"at most {self.max_k}: this model returns its top {self.max_k}")
        return k
