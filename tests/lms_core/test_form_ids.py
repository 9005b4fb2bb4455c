"""Two forms on one page: their CSRF tokens carry no id, so no id repeats."""

from __future__ import annotations

import pytest

from lms_core.courses.forms import SectionForm
from tests.test_every_page_in_chinese import duplicate_ids


@pytest.mark.app_config(WTF_CSRF_ENABLED=True)
def test_csrf_tokens_of_two_forms_have_no_id(app):
    with app.test_request_context("/"):
        html = str(SectionForm().hidden_tag()) + str(SectionForm(prefix="other").hidden_tag())
    assert html.count('csrf_token" type="hidden"') == 2
    assert 'id="csrf_token"' not in html and duplicate_ids(html) == []
    # Other fields keep their ids.
    with app.test_request_context("/"):
        assert 'id="title"' in str(SectionForm().title())
