"""What the model tests share."""

import pytest

from histomics_label.core.models import one_torch_thread


@pytest.fixture(scope='module', autouse=True)
def single_torch_thread():
    """One intra-op thread: the machines running the suite are shared, and threads fighting slow torch several
    times."""
    with one_torch_thread():
        yield
