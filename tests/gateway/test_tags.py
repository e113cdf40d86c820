"""``x-keel-tags``: labels a client attaches to its calls land in the request log (an eval
run finds its calls by them); a malformed or oversized header is a 400 in OpenAI's
format and nothing reaches upstream."""

from __future__ import annotations

import openai
import pytest
from tests.fakes import FakeDeployment
from tests.gateway.conftest import GatewayFactory

MESSAGES = [{"role": "user", "content": "tagged"}]


def test_tags_are_recorded_with_the_call(gateway_factory: GatewayFactory, upstream: FakeDeployment) -> None:
    gw = gateway_factory({"m": [upstream]})
    client = gw.client()
    client.chat.completions.create(
        model="m", messages=MESSAGES, extra_headers={"x-keel-tags": "eval_run=r1; case = c7 ;;"}
    )
    client.chat.completions.create(model="m", messages=MESSAGES)
    tagged, plain = sorted(gw.records(), key=lambda r: "tags" not in r.extra)
    assert tagged.extra["tags"] == {"eval_run": "r1", "case": "c7"}
    assert "tags" not in plain.extra


@pytest.mark.parametrize(
    "header",
    ["no-equals-sign", "=value", "k=" + "v" * 256, ";".join(f"k{i}=v" for i in range(17))],
)
def test_a_malformed_tags_header_is_refused(
    gateway_factory: GatewayFactory, upstream: FakeDeployment, header: str
) -> None:
    gw = gateway_factory({"m": [upstream]})
    with pytest.raises(openai.BadRequestError) as caught:
        gw.client().chat.completions.create(
            model="m", messages=MESSAGES, extra_headers={"x-keel-tags": header}
        )
    assert "x-keel-tags" in str(caught.value)
    assert upstream.requests() == []
