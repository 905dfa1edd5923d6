"""The web page with broken configuration files: it starts anyway (on the last good configuration,
as the agent does), shows what is wrong on every page to its users (/healthz says only that it is
alive: a visitor learns nothing of the configuration), and loads the files
again once they are fixed. `agent web` itself, in-process, is what supervisord runs."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from agent.cli.common import load_chosen
from agent.engine.config_source import START_ORDER, ConfigSource
from agent.web import build_app, make_context

from .conftest import ENV, OPERATOR_PW, WebWorld, sign_in


def _chosen(world: WebWorld):  # type: ignore[no-untyped-def]
    old = os.getcwd()
    os.chdir(world.root)
    try:
        return load_chosen(world.inventory, None, START_ORDER)
    finally:
        os.chdir(old)


async def test_broken_files_the_page_serves_on_the_last_good_one_and_says_why(web_world: WebWorld) -> None:
    source = ConfigSource(web_world.inventory, [web_world.root / "playbooks"], env=ENV,
                          templates_dir=web_world.root / "templates")
    good, _ = source.choose(("disk",))
    assert good is not None and source.save_last_good(good.config) is None
    health = web_world.root / "playbooks" / "health.yaml"
    text = health.read_text()
    health.write_text(text.replace("warning:", "warnin:"))

    chosen, source = _chosen(web_world)
    assert chosen.origin == "last-good"
    ctx = make_context(chosen.config, store_url=web_world.store_url, env=ENV,
                       templates_dir=web_world.root / "templates", charts=False, source=source, chosen=chosen)
    async with TestClient(TestServer(build_app(ctx), host="127.0.0.1")) as client:
        assert await (await client.get("/healthz")).json() == {"status": "ok"}
        await sign_in(client, "operator", OPERATOR_PW)
        overview = await (await client.get("/")).text()
        assert 'id="config-note"' in overview and "running on last good configuration from " in overview
        assert f"{health}:" in overview and "warnin" in overview
        agent_page = await (await client.get("/agent")).text()
        assert "unknown key &#39;warnin&#39;" in agent_page or "unknown key 'warnin'" in agent_page

        health.write_text(text)  # fixed: the page loads the files again by itself

        async def fixed() -> bool:
            return 'id="config-note"' not in await (await client.get("/")).text()

        for _ in range(200):
            if await fixed():
                break
            await asyncio.sleep(0.1)
        assert await fixed()
        overview = await (await client.get("/")).text()
        assert 'id="config-note"' not in overview


def test_without_any_good_configuration_the_page_still_starts(web_world: WebWorld) -> None:
    inventory = web_world.inventory
    inventory.unlink()
    inventory.symlink_to(inventory.name)
    chosen, _ = _chosen(web_world)
    assert chosen.origin == "built-in"
    assert "a symbolic link that loops" in chosen.summary()


def test_page_config_state_is_none_without_a_watch(web_world: WebWorld) -> None:
    chosen, _ = _chosen(web_world)
    ctx = make_context(chosen.config, store_url=web_world.store_url, env=ENV,
                       templates_dir=Path(web_world.root / "templates"), charts=False)
    assert ctx.config_state is None
