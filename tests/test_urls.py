"""URL canonicalisation, link resolution and hosts."""

from __future__ import annotations

import pytest

from digestbot.urls import canonicalize_url, host_of, resolve_link


@pytest.mark.parametrize(("raw", "canonical"), [
    ("HTTP://News.Example.COM/Story", "http://news.example.com/Story"),
    ("http://news.example.com:80/a", "http://news.example.com/a"),
    ("https://news.example.com:443/a", "https://news.example.com/a"),
    ("https://news.example.com:8443/a", "https://news.example.com:8443/a"),
    ("https://news.example.com/a#comments", "https://news.example.com/a"),
    ("https://news.example.com/a/", "https://news.example.com/a"),
    ("https://news.example.com", "https://news.example.com/"),
    ("https://news.example.com/", "https://news.example.com/"),
    ("https://news.example.com/a?", "https://news.example.com/a"),
    ("https://news.example.com/a/./b/../c", "https://news.example.com/a/c"),
    ("https://news.example.com/%7Eeditor/%2fx", "https://news.example.com/~editor/%2Fx"),
    ("https://news.example.com/caf%c3%a9", "https://news.example.com/caf%C3%A9"),
    ("https://news.example.com/café", "https://news.example.com/caf%C3%A9"),
    ("https://news.example.com/a b", "https://news.example.com/a%20b"),
    ("https://news.example.com/100%", "https://news.example.com/100%25"),
    ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
    ("https://news.example.com./x", "https://news.example.com/x"),
    ("http://[2001:DB8::1]:80/x/", "http://[2001:db8::1]/x"),
])
def test_canonicalize_normalises_scheme_host_port_path(raw: str, canonical: str) -> None:
    assert canonicalize_url(raw) == canonical


def test_canonicalize_drops_tracking_params_and_sorts_the_rest() -> None:
    url = ("https://news.example.com/story?utm_source=rss&b=2&UTM_Medium=x&fbclid=abc&a=1"
           "&gclid=1&dclid=2&mc_cid=3&mc_eid=4&igshid=5&ref_src=6&_ga=7&yclid=8&msclkid=9")
    assert canonicalize_url(url) == "https://news.example.com/story?a=1&b=2"


def test_canonicalize_only_tracking_params_leaves_no_query() -> None:
    assert canonicalize_url("https://news.example.com/s?utm_campaign=z") == \
        "https://news.example.com/s"


def test_canonicalize_keeps_meaningful_query_values_and_encoding() -> None:
    assert canonicalize_url("https://n.example/s?id=%41%26b&q=a+b&flag") == \
        "https://n.example/s?flag&id=A%26b&q=a+b"


def test_canonicalize_is_idempotent_and_equates_variants() -> None:
    variants = [
        "https://News.Example.com:443/politics/harbour-vote/?utm_source=feed#top",
        "https://news.example.com/politics/harbour-vote",
        "https://news.example.com/politics/./harbour-vote/",
    ]
    canon = {canonicalize_url(v) for v in variants}
    assert canon == {"https://news.example.com/politics/harbour-vote"}
    only = canon.pop()
    assert canonicalize_url(only) == only


def test_canonicalize_leaves_unparseable_url_as_is() -> None:
    assert canonicalize_url("http://[::1/x") == "http://[::1/x"


@pytest.mark.parametrize(("base", "link", "expected"), [
    ("https://news.example.com/feeds/rss.xml", "/2031/05/harbour",
     "https://news.example.com/2031/05/harbour"),
    ("https://news.example.com/feeds/rss.xml", "item/7", "https://news.example.com/feeds/item/7"),
    ("https://news.example.com/feeds/rss.xml", "../item/7", "https://news.example.com/item/7"),
    ("https://news.example.com/feeds/rss.xml", "//cdn.example.org/a", "https://cdn.example.org/a"),
    ("https://news.example.com/f", "  http://other.example/x\n", "http://other.example/x"),
    ("https://news.example.com/f", "http://other.example/long\n/path",
     "http://other.example/long/path"),
])
def test_resolve_link_makes_absolute_http_links(base: str, link: str, expected: str) -> None:
    assert resolve_link(base, link) == expected


@pytest.mark.parametrize("link", [
    None, "", "   ", "javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>",
    "mailto:desk@news.example.com", "ftp://files.example.com/x", "file:///etc/passwd",
    "http://", "http://news.example.com:99999/x", "http://[::1/x",
])
def test_resolve_link_refuses_non_web_or_broken_links(link: str | None) -> None:
    assert resolve_link("https://news.example.com/feed", link) is None


def test_resolve_link_with_relative_link_and_no_usable_base_is_none() -> None:
    assert resolve_link("", "/relative/only") is None


@pytest.mark.parametrize(("url", "host"), [
    ("https://WWW.News.Example.com:8443/x", "www.news.example.com"),
    ("http://bücher.example/", "xn--bcher-kva.example"),
    ("http://[2001:db8::1]:81/", "2001:db8::1"),
    ("not a url", ""),
    ("http://[::1/x", ""),
])
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host
