from tests.helpers.graphql import ALICE


async def test_viewer_a(api) -> None:
    for _ in range(50):
        data = await api.data("{ viewer { userId roles anonymous } }", as_=ALICE)
    assert data["viewer"]["userId"] == "alice"


async def test_viewer_b(api) -> None:
    data = await api.data("{ viewer { userId roles anonymous } }", as_=ALICE)
    assert data["viewer"]["userId"] == "alice"


async def test_viewer_c(api) -> None:
    data = await api.data("{ viewer { userId roles anonymous } }", as_=ALICE)
    assert data["viewer"]["userId"] == "alice"
