"""The browser overlay in a real headless browser (Debian's chromium, driven by Playwright).

The server is the real `BroadcastServer`, publishing messages the test chooses, so the
page is checked against exactly what is broadcast. Screenshots go to ``test-artifacts/``
at the top of the repository (kept out of git) for a person to look at.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LABELS, make_hello
from playwright.sync_api import Browser, Page, expect, sync_playwright

from streamer.outlets import protocol
from streamer.outlets.access import AccessPolicy, is_loopback
from streamer.outlets.server import BroadcastServer, ServerThread, hosts_to_open

CHROMIUM = "/usr/bin/chromium"
# Chromium as root needs no sandbox; without the network flags it keeps trying to reach
# Google's hosts, which this machine's closed network refuses (shared/NOTES.md).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SOURCE_HEALTH = {
    "overflow_samples": 0, "overflow_events": 0, "latency_ms": 4.0, "clients": 1,
    "dropped_messages": 0, "source": "null sink",
}  # fmt: skip
WAIT_MS = 10_000  # any single expectation; the reconnect back-off is at most 5 s


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), "no chromium: run the README's test command (scripts/test.sh)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def playing(
    genre: str, time: float, *, segment_start: float = 0.0, tags: dict[str, float] | None = None
) -> dict[str, Any]:
    """An update with `genre` on top at 70 % and the rest shared."""
    rest = 0.3 / (len(LABELS) - 1)
    probabilities = {label: 0.7 if label == genre else rest for label in LABELS}
    return protocol.update_message(
        time=time, probabilities=probabilities, top=genre, confidence=0.7, state="music",
        level_dbfs=-14.0, segment_start=segment_start, tags=tags,
    )  # fmt: skip


def track(track_id: int, name: str) -> dict[str, Any]:
    return {
        "id": track_id, "name": name, "file": f"{track_id}.flac", "title": name, "artist": None,
        "album": None, "genre": "jazz", "tempo": 96.0, "key": "A minor", "camelot": "8A",
        "similarity": 0.9, "reasons": ["same genre: jazz (70%)"],
    }  # fmt: skip


def show(page: Page, genre: str) -> None:
    expect(page.locator("#genre")).to_have_attribute("data-genre", genre, timeout=WAIT_MS)


def screenshot(page: Page, name: str) -> Path:
    """Save a PNG of the page, transparent where the page is, once the bars have settled."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.wait_for_timeout(600)  # the bars' width transition takes 0.4 s
    page.screenshot(path=path, omit_background=True)
    assert path.stat().st_size > 10_000, "the screenshot is (nearly) empty"
    return path


def test_the_page_follows_the_broadcast_and_reconnects_after_a_restart(browser: Browser) -> None:
    running = ServerThread(BroadcastServer(port=0, hello=make_hello)).start()
    server, port = running.server, running.server.port
    try:
        server.publish(playing("jazz", 30.0))
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(server.overlay_url)
        show(page, "jazz")  # the hello's state: a late joiner sees the genre at once
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(page.locator("#confidence")).to_have_text("70 %")
        expect(page.locator('.value[data-label="jazz"]')).to_have_text("70%")
        expect(page.locator(".name.top")).to_have_text("jazz")

        server.publish(protocol.segment_message(
            index=0, start=0.0, end=30.0, genre="jazz", state="music", confidence=0.7
        ))  # fmt: skip
        server.publish(playing("rock", 40.0, segment_start=30.0))
        show(page, "rock")
        expect(page.locator('#timeline > div[data-genre="jazz"]')).to_have_count(1)
        expect(page.locator('#timeline > div[data-genre="rock"]')).to_have_count(1)
        assert page.locator("#recommendations").is_hidden()

        recommendations = protocol.recommendations_message(
            time=40.0, basis={"genre": "rock", "tempo": 120.0, "key": "A minor", "camelot": "8A"},
            now_playing=None, tracks=[track(1, "Miles - So What"), track(2, "Bill - Peace")],
        )  # fmt: skip
        protocol.validate(recommendations)
        server.publish(recommendations)
        expect(page.locator("#tracks > li")).to_have_count(2)
        expect(page.locator("#tracks > li").first).to_contain_text("Miles - So What")
        screenshot(page, "overlay.png")

        lost = dict(SOURCE_HEALTH, time=41.0, input_lost_at=40.5, input_losses=1)
        server.publish(protocol.status_message(**lost))
        expect(page.locator("#input-lost")).to_have_text("input lost at 0:40: waiting for it")
        server.publish(protocol.status_message(**dict(SOURCE_HEALTH, time=43.0, input_losses=1)))
        expect(page.locator("#input-lost")).to_be_hidden()

        running.stop()  # the server goes away ...
        expect(page.locator("#connection")).to_have_attribute(
            "data-state", "reconnecting", timeout=WAIT_MS
        )
        running = ServerThread(BroadcastServer(port=port, hello=make_hello)).start()
        server = running.server  # ... and comes back on the same port, playing blues
        server.publish(playing("blues", 5.0))
        show(page, "blues")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        expect(page.locator("#recommendations")).to_be_hidden()  # a new session: none yet
        expect(page.locator("#tracks > li")).to_have_count(0)
    finally:
        running.stop()


def test_the_page_carries_the_token_and_can_be_transparent(browser: Browser) -> None:
    access = AccessPolicy(token="t0ken")
    with ServerThread(BroadcastServer(port=0, hello=make_hello, access=access)) as running:
        running.server.publish(playing("rock", 3.0))
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(running.server.overlay_url)  # without the token: refused, keeps retrying
        expect(page.locator("#connection")).to_have_attribute(
            "data-state", "reconnecting", timeout=WAIT_MS
        )
        assert page.locator("#genre").get_attribute("data-genre") == ""
        page.goto(f"{running.server.overlay_url}?token=t0ken&transparent=1")
        show(page, "rock")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgba(0, 0, 0, 0)"  # see-through for broadcast software
        screenshot(page, "overlay-transparent.png")


def test_the_page_says_listening_until_the_genre_is_decided(browser: Browser) -> None:
    with ServerThread(BroadcastServer(port=0, hello=make_hello)) as running:
        undecided = dict(playing("jazz", 3.0), top=None)
        running.server.publish(undecided)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(running.server.overlay_url)
        expect(page.locator("#genre")).to_have_text("listening…", timeout=WAIT_MS)
        running.server.publish(dict(undecided, time=3.5, state="silence"))
        expect(page.locator("#genre")).to_have_text("silence", timeout=WAIT_MS)


TAGS = {
    "female vocalists": 0.9,
    "mellow": 0.41,
    "chill": 0.62,
    "80s": 0.62,
    "sad": 0.39,
    "party": 0.4,
}


@pytest.mark.parametrize(
    ("rule", "shown"),
    [
        (None, ["female vocalists", "80s", "chill"]),  # the protocol's: at least 0.4, three
        ({"minimum": 0.41, "limit": 5}, ["female vocalists", "80s", "chill", "mellow"]),
    ],
)
def test_the_page_shows_the_tags_the_hellos_rule_picks_as_chips(
    browser: Browser, rule: dict[str, Any] | None, shown: list[str]
) -> None:
    def hello() -> dict[str, Any]:
        return make_hello() if rule is None else {**make_hello(), "shown_tags": rule}

    with ServerThread(BroadcastServer(port=0, hello=hello)) as running:
        running.server.publish(playing("jazz", 3.0))  # before the tagger's first patch
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(running.server.overlay_url)
        show(page, "jazz")
        chips, tags = page.locator("#tags > span"), page.locator("#tags")
        expect(tags).to_have_css("display", "none")  # takes no room: the bars stay up
        running.server.publish(playing("jazz", 3.5, tags=TAGS))
        expect(chips).to_have_text(shown, timeout=WAIT_MS)
        expect(tags).to_be_visible()
        if rule is None:
            screenshot(page, "overlay-tags.png")
        running.server.publish(dict(playing("jazz", 4.0, tags=TAGS), top=None, state="silence"))
        expect(page.locator("#genre")).to_have_text("silence", timeout=WAIT_MS)
        expect(tags).to_have_css("display", "none")  # a silent patch's tags describe nothing
        expect(chips).to_have_count(0)


def test_a_browser_on_the_lan_opens_the_overlay_of_a_server_on_every_address(
    browser: Browser,
) -> None:
    """Bound to 0.0.0.0, opened at this machine's LAN address as another machine would:
    the page's origin is that address, which the server admits as its own."""
    access = AccessPolicy(token="t0ken")
    server = BroadcastServer(host="0.0.0.0", port=0, hello=make_hello, access=access)
    lan = next(host for host in hosts_to_open("0.0.0.0") if not is_loopback(host))
    with ServerThread(server) as running:
        running.server.publish(playing("rock", 3.0))
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"http://{lan}:{running.server.port}/?token=t0ken")
        show(page, "rock")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_only_the_overlay_files_are_served_with_a_strict_policy() -> None:
    with ServerThread(BroadcastServer(port=0, hello=make_hello)) as running:
        base = running.server.overlay_url
        with urllib.request.urlopen(base) as response:
            page = response.read().decode()
            policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy
        assert '<script src="overlay.js"' in page and "__PALETTE__" not in page
        for path in ("overlay.js", "overlay.css"):
            with urllib.request.urlopen(base + path) as response:
                assert response.status == 200
        for path in ("../pyproject.toml", "%2e%2e/pyproject.toml", "__init__.py", "x"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + path)
            assert refused.value.code == 404, path


SIZES = [(1920, 1080), (1280, 720), (640, 360)]
SHIPPED_LABELS = (
    "blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae",
    "rock", "electronic",
)  # fmt: skip


def shipped_hello() -> dict[str, Any]:
    """The hello of the shipped decision's eleven genres: the most bars the page draws."""
    return {**make_hello(), "labels": list(SHIPPED_LABELS)}


def full_session(server: BroadcastServer, *, library: bool) -> None:
    """A long session: segments of several genres, tags, and (`library`) five tracks with
    long names and a track playing."""
    rest = 0.3 / (len(SHIPPED_LABELS) - 1)
    for index, genre in enumerate(["disco", "rock", "jazz", "metal"]):
        server.publish(protocol.segment_message(
            index=index, start=600.0 * index, end=600.0 * (index + 1), genre=genre,
            state="music", confidence=0.8,
        ))  # fmt: skip
    server.publish(protocol.update_message(
        time=2500.0, probabilities={g: 0.7 if g == "electronic" else rest for g in SHIPPED_LABELS},
        top="electronic", confidence=0.7, state="music", level_dbfs=-14.0, segment_start=2400.0,
        tags={"female vocalists": 0.9, "dance": 0.8, "80s": 0.6},
    ))  # fmt: skip
    if library:
        names = [f"Artist number {i} with a long name - A title that goes on and on {i}"
                 for i in range(1, 6)]  # fmt: skip
        server.publish(protocol.recommendations_message(
            time=2500.0, basis={"genre": "electronic", "tempo": 124.0, "key": "A minor",
                                "camelot": "8A"},
            now_playing={**track(9, "Now - Playing this one"), "similarity": 88.0},
            tracks=[{**track(i, n), "similarity": 90.0 - i} for i, n in enumerate(names, 1)],
        ))  # fmt: skip


def inside(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None, selector
    return (box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size["width"] + 0.5
            and box["y"] + box["height"] <= size["height"] + 0.5)  # fmt: skip


@pytest.mark.parametrize("library", [False, True], ids=["alone", "library"])
@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_the_page_fits_every_browser_source_size_without_a_scrollbar(
    browser: Browser, width: int, height: int, library: bool
) -> None:
    with ServerThread(BroadcastServer(port=0, hello=shipped_hello)) as running:
        full_session(running.server, library=library)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(running.server.overlay_url)
        show(page, "electronic")
        if library:
            expect(page.locator("#tracks > li")).to_have_count(5, timeout=WAIT_MS)
        expect(page.locator("#tags > span")).to_have_count(3, timeout=WAIT_MS)
        screenshot(page, f"overlay-{width}x{height}-{'library' if library else 'alone'}.png")
        fits = page.evaluate(
            "[document.documentElement.scrollHeight <= innerHeight,"
            " document.documentElement.scrollWidth <= innerWidth]"
        )
        assert fits == [True, True], fits
        keys = ["#genre", "#confidence", "#tags", "#bars", '.name[data-label="electronic"]',
                "#timeline", "footer"]  # fmt: skip
        if library:
            keys += ["#now-playing", "#tracks > li >> nth=4"]
        assert [key for key in keys if not inside(page, key)] == []


@pytest.mark.parametrize("hide", ["bars", "timeline", "recommendations", "bars,timeline"])
def test_the_page_leaves_out_the_parts_the_url_hides(browser: Browser, hide: str) -> None:
    parts = {"bars": "#bars", "timeline": ".timeline", "recommendations": "#recommendations"}
    with ServerThread(BroadcastServer(port=0, hello=shipped_hello)) as running:
        full_session(running.server, library=True)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{running.server.overlay_url}?hide={hide}")
        show(page, "electronic")
        page.wait_for_timeout(300)  # the recommendations arrive just after the update
        for part, selector in parts.items():
            if part in hide.split(","):
                expect(page.locator(selector)).to_be_hidden()
            else:
                expect(page.locator(selector)).to_be_visible()
        screenshot(page, f"overlay-hide-{hide.replace(',', '-')}.png")


def test_on_a_monitor_the_page_follows_the_stream_its_url_names(browser: Browser) -> None:
    streams = [{"name": n, "source": n, "state": None} for n in ("Jazz FM", "Rock 1")]
    hello = lambda: {**make_hello(), "streams": streams}  # noqa: E731
    with ServerThread(BroadcastServer(port=0, hello=hello)) as running:
        server = running.server
        server.publish(playing("jazz", 3.0) | {"stream": "Jazz FM"})
        server.publish(playing("rock", 3.0) | {"stream": "Rock 1"})
        pages = {}
        for query, genre in (("?stream=Rock%201", "rock"), ("", "jazz")):  # default: the first
            pages[genre] = page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(server.overlay_url + query)
            show(page, genre)  # at once, from the hello's state of that stream
        for time in (3.5, 4.0):  # both streams go on; each page keeps to its own
            server.publish(playing("blues", time) | {"stream": "Jazz FM"})
            server.publish(playing("rock", time) | {"stream": "Rock 1"})
        show(pages["jazz"], "blues")
        pages["rock"].wait_for_timeout(500)
        show(pages["rock"], "rock")
