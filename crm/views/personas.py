"""Placeholder: personas views are being written."""


def persona_list(request, *args, **kwargs):
    raise NotImplementedError


def persona_create(request, *args, **kwargs):
    raise NotImplementedError


def persona_detail(request, *args, **kwargs):
    raise NotImplementedError


def persona_edit(request, *args, **kwargs):
    raise NotImplementedError


def persona_assign(request, *args, **kwargs):
    raise NotImplementedError

