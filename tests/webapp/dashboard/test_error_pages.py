"""Error pages: a 404, 403 or 500 looks like the dashboard and leads back; the API keeps answering JSON."""

from __future__ import annotations

from django.test import Client, RequestFactory

from webapp.core.error_pages import server_error

STYLESHEET = 'href="/static/dashboard/dashboard.css"'
NAV = '<nav class="nav">'


def _logged_in(client: Client) -> Client:
    client.login(username="alice", password="alice-password")
    return client


def test_an_unknown_page_is_a_styled_404_with_the_navigation(client, user):
    response = _logged_in(client).get("/no/such/page/")
    html = response.content.decode()
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
    assert STYLESHEET in html and NAV in html and 'href="/datasets/"' in html
    assert "Page not found" in html and "<code>/no/such/page/</code>" in html
    assert "back to the overview" in html and '<main data-page="error">' in html


def test_another_users_object_is_the_same_404_page_naming_what_was_asked(client, user, other_user):
    client.login(username="bob", password="bob-password")
    html = client.get("/datasets/999999/").content.decode()
    assert NAV in html and "dataset 999999 not found" in html


def test_a_visitor_who_is_not_logged_in_gets_the_404_without_the_navigation(client, db):
    html = client.get("/no/such/page/").content.decode()
    assert STYLESHEET in html and NAV not in html and "back to the overview" in html


def test_a_stale_form_is_a_styled_403_that_says_to_reload(user, ready_dataset):
    client = _logged_in(Client(enforce_csrf_checks=True))
    response = client.post("/jobs/create", {"dataset": ready_dataset.pk, "preset": "paper"})
    html = response.content.decode()
    assert response.status_code == 403
    assert STYLESHEET in html and NAV in html and "reload the page and try again" in html
    assert "CSRF" not in html  # Django's reason means nothing to a user


def test_a_permission_denied_is_a_styled_403(client, staff_user):
    client.login(username="carol", password="carol-password")  # staff, but no permission on datasets
    response = client.get("/admin/datasets/dataset/")
    html = response.content.decode()
    assert response.status_code == 403 and STYLESHEET in html and NAV in html and "Not allowed" in html


def test_the_500_page_is_styled_and_needs_no_request_context():
    response = server_error(RequestFactory().get("/datasets/"))
    html = response.content.decode()
    assert response.status_code == 500 and STYLESHEET in html and 'href="/"' in html
    assert "Something went wrong" in html and NAV in html


def test_api_paths_keep_their_json_errors(client, user):
    client.login(username="alice", password="alice-password")
    response = client.get("/api/v1/nope")
    assert response.status_code == 404 and response.json() == {
        "message": "no API endpoint at /api/v1/nope",
        "extra": {"path": "/api/v1/nope"},
    }
    missing = client.get("/api/v1/jobs/999999")
    assert missing.status_code == 404 and set(missing.json()) == {"message", "extra"}
    error = server_error(RequestFactory().get("/api/v1/jobs"))
    assert error.status_code == 500 and error["Content-Type"] == "application/json"
