"""The prospecting pages: campaigns, offers, ambassadors, events, and the public unsubscribe page.

Everyone with a role reads them; managers and admins write. Views parse, authorise, call a service, render.
"""

from __future__ import annotations

from django import forms


def style_for_bootstrap(form: forms.BaseForm) -> forms.BaseForm:
    """Give every widget its Bootstrap class, so that templates render fields in a plain loop."""
    for form_field in form.fields.values():
        widget = form_field.widget
        if isinstance(widget, forms.CheckboxInput):
            css_class = "form-check-input"
        elif isinstance(widget, forms.Select):
            css_class = "form-select"
        else:
            css_class = "form-control"
        widget.attrs.setdefault("class", css_class)
    return form


def rfm_segment_choices() -> list[tuple[str, str]]:
    from scoring.rfm import SEGMENTS

    return [("", "—"), *((key, segment.label) for key, segment in SEGMENTS.items())]
