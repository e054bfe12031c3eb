"""Placeholder: card views are being written."""


def client_create(request, *args, **kwargs):
    raise NotImplementedError


def client_duplicates(request, *args, **kwargs):
    raise NotImplementedError


def client_detail(request, *args, **kwargs):
    raise NotImplementedError


def client_edit(request, *args, **kwargs):
    raise NotImplementedError


def client_delete(request, *args, **kwargs):
    raise NotImplementedError


def interaction_create(request, *args, **kwargs):
    raise NotImplementedError


def follow_up_create(request, *args, **kwargs):
    raise NotImplementedError


def follow_up_close(request, *args, **kwargs):
    raise NotImplementedError

