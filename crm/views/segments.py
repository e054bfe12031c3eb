"""Placeholder: segments views are being written."""


def segment_list(request, *args, **kwargs):
    raise NotImplementedError


def segment_create(request, *args, **kwargs):
    raise NotImplementedError


def segment_detail(request, *args, **kwargs):
    raise NotImplementedError


def segment_delete(request, *args, **kwargs):
    raise NotImplementedError

