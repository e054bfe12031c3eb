"""Views of the CRM core, one module per page family."""
