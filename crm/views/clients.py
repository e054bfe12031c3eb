"""Placeholder: clients views are being written."""


def client_list(request, *args, **kwargs):
    raise NotImplementedError


def client_export(request, *args, **kwargs):
    raise NotImplementedError

