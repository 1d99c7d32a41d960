"""Session-wide fixtures: tiny models built once, one local Ray, loopback only."""

import os

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_refs(model_cache):
    from cotvtm import models

    return models.resolve("tiny", cache_dir=model_cache, seed=0)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session; its address lets subprocesses join it.

    Its workers hold the S3 test server's credentials the way a node does: in the environment
    they start with (Ray never forwards credentials), put there before Ray starts.
    """
    import ray
    from s3server import node_credentials

    from cotvtm.raycluster import init_ray

    os.environ.update(node_credentials())
    init_ray(num_cpus=2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
