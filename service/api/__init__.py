"""The HTTP API: routers under ``/v1`` (see :mod:`service.app`)."""
