"""Try-it: recommendations for a typed history from a dataset's serving version."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from webapp.core.exceptions import ApplicationError, NotFoundError
from webapp.dashboard.decorators import not_found_as_404
from webapp.dashboard.forms import TryForm
from webapp.dashboard.selectors import (
    dataset_example_histories,
    datasets_with_active_version,
)
from webapp.dashboard.views.shared import (
    page_context,
)
from webapp.datasets.selectors import dataset_get, dataset_item_titles
from webapp.registry.selectors import (
    model_version_active,
)
from webapp.registry.serving import serving_limits, serving_recommend


@login_required
@require_http_methods(["GET", "POST"])
@not_found_as_404
def try_it(request: HttpRequest) -> HttpResponse:
    """Recommendations for a typed history from a dataset's active version.

    ``GET ?dataset=`` picks the dataset (a link to share); the history is POSTed, so it may be as long
    as a person can paste. The page says how much of it the model reads, shows the items' titles where
    the dataset has them, and keeps what was typed beside any error.
    """
    user = request.user
    choices = datasets_with_active_version(user=user)
    data = request.POST if request.method == "POST" else None
    asked = (data if data is not None else request.GET).get("dataset")
    if asked and not any(str(d.pk) == asked for d in choices):
        # another user's dataset is a 404; one of the user's without a serving version says so below
        choices.append(dataset_get(user=user, dataset_id=asked))
    selected = next((d for d in choices if str(d.pk) == asked), None) if asked else None
    selected = selected or (choices[0] if choices else None)
    version, limits, result, error = None, None, None, ""
    if selected is not None:
        try:
            version = model_version_active(user=user, dataset_id=selected.pk)
            limits = serving_limits(version=version)
        except NotFoundError:
            raise
        except ApplicationError as exc:
            error = exc.message
    form = TryForm(
        data if limits is not None else None,
        datasets=choices,
        max_k=limits.max_k if limits else None,
        max_len=limits.max_len if limits else None,
        initial={"dataset": selected.pk if selected else None},
    )
    if form.is_bound and form.is_valid():
        values = form.cleaned_data
        try:
            result = serving_recommend(
                version=version, history=values["history"], k=values["k"], exclude_seen=values["exclude_seen"]
            )
        except ApplicationError as exc:
            form.add_error("k" if "max_k" in exc.extra else None, exc.message)
    titles = dataset_item_titles(selected) if selected is not None else {}
    context = {
        "form": form,
        "choices": choices,
        "selected": selected,
        "version": version,
        "limits": limits,
        "result": result,
        "error": error,
        "titles": bool(titles),
        "rows": [(i, titles.get(i, ""), s) for i, s in zip(result.items, result.scores, strict=True)]
        if result
        else [],
        "dropped": ", ".join(result.dropped) if result else "",
        "examples": dataset_example_histories(selected, titles=titles) if selected is not None else [],
    }
    return render(request, "dashboard/try.html", page_context(context, "try"))
