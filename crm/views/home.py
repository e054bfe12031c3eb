"""Placeholder: home views are being written."""


def home(request, *args, **kwargs):
    raise NotImplementedError

