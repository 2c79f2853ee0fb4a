"""Marks for tests of variants whose library is an optional extra: skipped, saying why, where it cannot import."""

import pytest


def timm_imports() -> bool:
    """Whether timm imports (it needs a torchvision built for the installed torch)."""
    try:
        import timm  # noqa: F401
    except Exception:
        return False
    return True


needs_timm = pytest.mark.skipif(not timm_imports(), reason='timm (with a torchvision matching torch) is not installed')
