from django import template

register = template.Library()


@register.inclusion_tag("orgadmin/field.html")
def admin_field(field):
    """One field of an admin form: label, input, hint and error, tied together for screen readers."""
    return {"field": field}
