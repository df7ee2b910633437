"""A deterministic PixelRec-layout dataset with known latent structure (docs/data.md, "The built-in
synthetic dataset").

Why synthetic: PixelRec may not be redistributed, yet every stage must run offline and a result must
mean something about the machinery. So the generator plants the structure a recommender is supposed
to find, and carries it in the content with different strengths and with ambiguity:

* items belong to latent *topics*; a *tag* groups several topics (coarser than the topic);
* a cover is rendered from a visual *style* (palette + pattern) shared by topics of *different*
  tags, so the image alone is ambiguous, image + tag identify the topic;
* title and description mix words of a per-topic vocabulary with generic filler;
* each user prefers a few topics (sparse Dirichlet); a draw follows the user's topics or global
  popularity, and either long-tailed (lognormal) popularity or freshness (recently released items);
* items are released over a one-year timeline and a user at time ``t`` only sees released items,
  so the newest items are cold when each user's last interaction is held out;
* counts are lifetime totals that follow realised popularity with lognormal noise;
* PixelRec's defects, each at least once: missing and corrupt covers, empty titles, missing or float
  counts, non-ASCII titles, quoted commas, duplicated interaction rows.

The truth (topics, styles, popularity, release times, user preferences) goes to ``_latent_truth/``
for diagnostics; no stage reads it. Everything is vectorised numpy from one seed (independent child
streams per part); the only per-item Python is encoding one JPEG per cover. Same config, same bytes.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pixrec import schema
from pixrec.config import ConfigError, from_mapping, section
from pixrec.atomic import atomic_dir
from pixrec.registry import Registry

DAY = 86_400

# --- vocabularies (in code, so the same seed gives the same text on every machine) ----------------
_CONTENT = """
guitar piano drums violin melody chorus concert festival album lyrics singer band rhythm beat remix
recipe noodles dumplings curry soup bread cake pastry coffee tea wine grill barbecue spice sauce salad
mountain beach island river forest desert canyon lake valley glacier volcano waterfall sunset harbor
city street market temple castle bridge tower museum village train flight airport hotel camping hiking
puppy kitten parrot rabbit hamster horse turtle goldfish lizard owl dolphin panda tiger wolf fox deer
football basketball tennis badminton volleyball swimming cycling marathon boxing karate yoga pilates
workout stretching squat sprint goal match league trophy referee stadium coach champion rookie season
phone laptop camera drone robot battery processor keyboard monitor headphones speaker console charger
engine tire wheel motorbike truck sedan race garage turbo drift rally helmet license highway parking
lipstick mascara skincare serum perfume nail hairstyle makeup outfit dress jacket sneakers boots scarf
painting sketch watercolor sculpture pottery origami calligraphy embroidery knitting crochet quilt clay
galaxy planet telescope comet nebula rocket satellite orbit eclipse meteor asteroid astronaut lunar
chemistry physics biology experiment microscope molecule crystal magnet circuit laser fossil dinosaur
history empire dynasty battle knight pharaoh samurai viking legend myth archive manuscript treasure
anime manga cosplay villain hero sword dragon wizard potion quest dungeon boss pixel arcade puzzle
stock budget savings crypto invoice mortgage startup investor salary market tax pension auction
garden tomato orchid cactus bonsai tulip seedling compost harvest orchard vineyard greenhouse blossom
baby toddler school homework exam teacher classroom library notebook pencil backpack campus lecture
comedy prank sketch parody meme blooper stand-up sitcom improv joke satire cartoon puppet magic trick
dance ballet tango salsa hiphop breakdance choreography waltz flamenco tap freestyle studio stage
furniture sofa lamp kitchen bathroom bedroom balcony curtain carpet shelf drawer wallpaper renovation
winter snow rain storm thunder breeze spring autumn summer frost fog rainbow lightning blizzard drought
"""
_FILLER = """
the a my our your this that new best top amazing simple quick easy daily weekly first last ultimate
with and for of in on at to from about after before during today tonight again finally really very
video vlog part episode guide tips tutorial review challenge moments highlights story life day time
how why what when watch try learn make see share full short long little big real secret favorite
"""
_TAGS = """
music food travel pets sports fitness tech cars beauty fashion art science space history games anime
finance garden family school comedy dance home weather nature health cooking photography film books
design crafts diy outdoors fishing esports football basketball tennis news politics economy startup
career education language parenting wedding relationships lifestyle vlog unboxing reviews asmr
meditation yoga running cycling skating skiing surfing climbing camping hunting boating aviation
trains military architecture interior furniture shopping deals luxury streetwear sneakers cosmetics
"""
_TAG_SUFFIXES = ("daily", "live", "tips", "clips", "talk", "world", "club", "hub")
CONTENT_WORDS = tuple(dict.fromkeys(_CONTENT.split()))
FILLER_WORDS = tuple(dict.fromkeys(_FILLER.split()))
_TAG_BASE = tuple(dict.fromkeys(_TAGS.split()))
# Non-ASCII fragments (accents + CJK) for the defect "title that is not ASCII"
NON_ASCII = ("Café 東京", "naïve 音乐", "crème brûlée 美食", "São Paulo 旅行", "Zürich ゲーム", "Ελλάδα 日常")

PATTERNS = ("stripes", "checker", "rings", "blobs")


def tag_names(n_tags: int) -> list[str]:
    """``n_tags`` distinct English tag names: base words, then ``<base> <suffix>`` combinations."""
    names = list(_TAG_BASE)
    for suffix in _TAG_SUFFIXES:
        names += [f"{b} {suffix}" for b in _TAG_BASE]
    if n_tags > len(names):
        raise ConfigError(f"data.synthetic.n_tags: at most {len(names)} tags are supported")
    return names[:n_tags]


@section
class SyntheticConfig:
    """Every generator knob. Presets set the sizes; ``data.synthetic`` overrides any field."""

    seed: int = 0
    # sizes: n_interactions counts unique (user, item) pairs; duplicated rows come on top
    n_users: int = 2_000
    n_items: int = 3_000
    n_interactions: int = 40_000
    n_topics: int = 60  # topic t has tag t % n_tags, so n_topics / n_tags topics per tag
    n_tags: int = 20
    n_styles: int = 12  # must be >= ceil(n_topics / n_tags): image + tag then identify the topic
    # users
    min_per_user: int = 5
    user_activity_sigma: float = 1.0  # lognormal sigma of (count - min); 1.0 gives median/mean ~ 0.7
    max_user_share: float = 0.2  # a user's count is at most this share of the catalogue
    topics_per_user: float = 2.0  # mean number of preferred topics (1 + Poisson)
    topic_affinity: float = 0.85  # share of draws from the user's topics; the rest by global popularity
    # items
    popularity_sigma: float = 1.5  # lognormal sigma of item popularity (the long tail)
    topic_size_concentration: float = 5.0  # Dirichlet over topic sizes; low = unequal topics
    freshness_share: float = 0.5  # share of draws weighted by recency of release
    freshness_days: float = 21.0  # e-folding time of that recency weight
    timeline_days: float = 365.0
    start_timestamp: int = 1_672_531_200  # 2023-01-01T00:00:00Z
    initial_catalogue: float = 0.3  # share of items released before the timeline starts
    release_end: float = 0.97  # last release, as a share of the timeline
    cover_all_items: bool = True  # move a few draws so every item has >= 1 interaction, like PixelRec
    # content
    vocab_per_topic: int = 12
    title_words_min: int = 3
    title_words_max: int = 8
    description_words_min: int = 10
    description_words_max: int = 40
    title_topic_share: float = 0.6  # share of title words from the topic vocabulary
    description_topic_share: float = 0.4
    count_noise_sigma: float = 0.5
    cover_size: int = 64
    cover_noise: float = 0.06
    jpeg_quality: int = 85
    # defects: each present at least once when its rate is > 0
    missing_cover_rate: float = 0.005
    corrupt_cover_rate: float = 0.002
    empty_title_rate: float = 0.005
    missing_count_rate: float = 0.01
    float_count_rate: float = 0.05
    non_ascii_title_rate: float = 0.005
    quoted_description_rate: float = 0.02
    duplicate_row_rate: float = 0.001

    def __post_init__(self) -> None:
        where = "data.synthetic"
        for name in ("n_users", "n_items", "n_topics", "n_tags", "n_styles", "min_per_user", "cover_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name} must be >= 1")
        if self.n_topics < self.n_tags:
            raise ConfigError(f"{where}: n_topics ({self.n_topics}) must be >= n_tags ({self.n_tags}): "
                              "the tag is coarser than the topic")
        if self.n_styles < -(-self.n_topics // self.n_tags):
            raise ConfigError(f"{where}: n_styles must be >= n_topics / n_tags so that image + tag "
                              "identify the topic")
        cap = self.user_cap
        if self.n_interactions < self.n_users * self.min_per_user:
            raise ConfigError(f"{where}: n_interactions must be >= n_users * min_per_user "
                              f"({self.n_users * self.min_per_user})")
        if self.n_interactions > self.n_users * cap or cap < self.min_per_user:
            raise ConfigError(f"{where}: too many interactions for the catalogue; raise n_items or "
                              "max_user_share")
        for name in ("topic_affinity", "freshness_share", "initial_catalogue", "title_topic_share",
                     "description_topic_share", "max_user_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{where}.{name} must be in [0, 1]")
        if not 0.0 < self.release_end <= 1.0:
            raise ConfigError(f"{where}.release_end must be in (0, 1]")
        for f in dataclasses.fields(self):
            if f.name.endswith("_rate") and not 0.0 <= getattr(self, f.name) < 0.5:
                raise ConfigError(f"{where}.{f.name} must be in [0, 0.5)")
        if not (1 <= self.title_words_min <= self.title_words_max
                and 1 <= self.description_words_min <= self.description_words_max):
            raise ConfigError(f"{where}: word ranges need 1 <= min <= max")
        if self.vocab_per_topic > len(CONTENT_WORDS):
            raise ConfigError(f"{where}.vocab_per_topic must be <= {len(CONTENT_WORDS)}")
        tag_names(self.n_tags)

    @property
    def user_cap(self) -> int:
        return max(1, int(self.max_user_share * self.n_items))

    @classmethod
    def from_preset(cls, name: str, seed: int, **overrides: Any) -> SyntheticConfig:
        """Preset ``name`` with ``overrides`` (the ``data.synthetic`` mapping); unknown keys rejected."""
        base = PRESETS.get(name)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ConfigError(f"data.synthetic: unknown key(s) {unknown}; valid keys are "
                              f"{sorted(fields - {'seed'})}")
        if "seed" in overrides:
            raise ConfigError("data.synthetic: set the seed with data.seed, not data.synthetic.seed")
        return from_mapping(cls, {**base, **overrides, "seed": int(seed)}, "data.synthetic")


PRESETS: Registry[dict[str, Any]] = Registry("synthetic preset")
PRESETS.register("tiny")(dict(n_users=150, n_items=250, n_interactions=3_000, n_topics=12, n_tags=6,
                              n_styles=4))
PRESETS.register("default")(dict(n_users=2_000, n_items=3_000, n_interactions=40_000, n_topics=60,
                                 n_tags=20, n_styles=12))
# PixelRec50K's published shape: 50,000 users, 82,865 items, 989,494 interactions, 108 tags,
# per user min 5 / mean 19.8 / median 14; ~43% of items with < 5 interactions (popularity_sigma 1.3).
PRESETS.register("pixelrec50k")(dict(n_users=50_000, n_items=82_865, n_interactions=989_494,
                                     n_topics=324, n_tags=108, n_styles=24, popularity_sigma=1.3))


# --- generation ------------------------------------------------------------------------------------
_STREAMS = ("ids", "items", "users", "interactions", "text", "covers", "defects")


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per part, so a change in one part leaves the others' draws alone."""
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.Generator(np.random.PCG64(c)) for name, c in zip(_STREAMS, children, strict=True)}


def _n_defects(rate: float, n: int) -> int:
    """At least one defect of each enabled kind, even on tiny data."""
    return 0 if rate <= 0 else min(n, max(1, round(rate * n)))


def _ids(rng: np.random.Generator, prefix: str, n: int) -> np.ndarray:
    """Distinct sparse ids like PixelRec's (``i213993``), unrelated to generation order."""
    numbers = rng.choice(max(10 * n, 1000), size=n, replace=False)
    return np.char.add(prefix, numbers.astype(str)).astype(object)


def _lognormal_counts(rng: np.random.Generator, total: int, n: int, low: int, high: int,
                      sigma: float) -> np.ndarray:
    """``n`` integers in [low, high], long-tailed (low + lognormal), summing exactly to ``total``."""
    extra_mean = total / n - low
    mu = np.log(max(extra_mean, 1e-9)) - sigma**2 / 2
    counts = np.clip(low + np.floor(rng.lognormal(mu, sigma, n)).astype(np.int64), low, high)
    while (diff := total - int(counts.sum())) != 0:  # hand out / take back the rounding, +-1 each
        room = counts < high if diff > 0 else counts > low
        who = rng.choice(np.flatnonzero(room), size=min(abs(diff), int(room.sum())), replace=False)
        counts[who] += 1 if diff > 0 else -1
    return counts


@dataclass
class _Items:
    topic: np.ndarray  # int64 (n_items,)
    popularity: np.ndarray  # float64, lognormal
    release: np.ndarray  # int64 unix seconds


@dataclass
class _Users:
    topics: np.ndarray  # int64 (n_users, m): preferred topics, padded with -1
    weights: np.ndarray  # float64 (n_users, m): preference weights, 0 where padded
    start: np.ndarray  # int64 unix seconds: first active second
    end: np.ndarray  # int64: last active second
    target: np.ndarray  # int64: number of unique items


def _make_items(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[_Items, np.ndarray]:
    topic_share = rng.dirichlet(np.full(cfg.n_topics, cfg.topic_size_concentration))
    topic = rng.choice(cfg.n_topics, size=cfg.n_items, p=topic_share)
    first = min(cfg.n_items, cfg.n_topics)  # every topic (hence every tag) has at least one item
    topic[:first] = rng.permutation(cfg.n_topics)[:first]
    popularity = rng.lognormal(0.0, cfg.popularity_sigma, cfg.n_items)
    span = cfg.timeline_days * DAY
    initial = rng.random(cfg.n_items) < cfg.initial_catalogue
    initial[rng.integers(cfg.n_items)] = True  # the catalogue is never empty at the start
    release = np.where(
        initial,
        cfg.start_timestamp - rng.uniform(0, 90 * DAY, cfg.n_items),
        cfg.start_timestamp + rng.uniform(0, cfg.release_end * span, cfg.n_items),
    ).astype(np.int64)
    return _Items(topic, popularity, release), topic_share


def _make_users(cfg: SyntheticConfig, rng: np.random.Generator, topic_share: np.ndarray) -> _Users:
    n, k = cfg.n_users, cfg.n_topics
    m_max = min(k, 8)
    m = np.minimum(1 + rng.poisson(max(cfg.topics_per_user - 1, 0.0), n), m_max)
    # sparse Dirichlet: m_u topics drawn without replacement (Gumbel top-k, by topic size), then
    # Dirichlet(1) weights over them
    keys = np.log(topic_share)[None, :] + rng.gumbel(size=(n, k)).astype(np.float32)
    top = np.argsort(-keys, axis=1, kind="stable")[:, :m_max]
    used = np.arange(m_max)[None, :] < m[:, None]
    weights = np.where(used, rng.exponential(size=(n, m_max)), 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    topics = np.where(used, top, -1)
    span = cfg.timeline_days * DAY
    length = span * rng.uniform(0.1, 1.0, n)
    start = cfg.start_timestamp + rng.uniform(0, 1, n) * (span - length)
    target = _lognormal_counts(rng, cfg.n_interactions, n, cfg.min_per_user, cfg.user_cap,
                               cfg.user_activity_sigma)
    return _Users(topics, weights, start.astype(np.int64), (start + length).astype(np.int64), target)


class _PrefixSampler:
    """Draw an item of a group (a topic, or one global group) among those released at time ``t``.

    Items are sorted by (group, release) and hold per-group cumulative weights, so the eligible set
    is a prefix and a draw is two ``searchsorted``; one numpy call per group, not per draw.
    """

    def __init__(self, group: np.ndarray, release: np.ndarray, weight: np.ndarray, n_groups: int):
        order = np.lexsort((np.arange(len(group)), release, group))
        self.order = order
        self.release = release[order]
        self.bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
        self.cum = np.empty(len(order))
        for g in range(n_groups):  # cumulative sums restart per group: exact even for tiny weights
            lo, hi = self.bounds[g], self.bounds[g + 1]
            self.cum[lo:hi] = np.cumsum(weight[order[lo:hi]])

    def sample(self, group: np.ndarray, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Item index per draw, -1 where the group has no item released by ``t``."""
        out = np.full(len(group), -1, dtype=np.int64)
        by_group = np.argsort(group, kind="stable")
        splits = np.searchsorted(group[by_group], np.arange(len(self.bounds)))
        for g in range(len(self.bounds) - 1):
            rows = by_group[splits[g]:splits[g + 1]]
            lo, hi = self.bounds[g], self.bounds[g + 1]
            if len(rows) == 0 or lo == hi:
                continue
            end = np.searchsorted(self.release[lo:hi], t[rows], side="right")
            ok = end > 0
            cum = self.cum[lo:hi]
            target = u[rows[ok]] * cum[end[ok] - 1]
            pos = np.minimum(np.searchsorted(cum, target, side="right"), end[ok] - 1)
            out[rows[ok]] = self.order[lo + pos]
        return out


def _draw(cfg: SyntheticConfig, rng: np.random.Generator, users: _Users, samplers: dict,
          who: np.ndarray, topic_affinity: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One candidate interaction per entry of ``who``: (item, time, via_topic)."""
    n = len(who)
    t = rng.integers(users.start[who], users.end[who] + 1)
    via_topic = rng.random(n) < topic_affinity
    cum = np.cumsum(users.weights[who], axis=1)
    slot = np.minimum((rng.random(n)[:, None] * cum[:, -1:] >= cum).sum(axis=1), cum.shape[1] - 1)
    topic = users.topics[who, slot]
    fresh = rng.random(n) < cfg.freshness_share
    u = rng.random(n)
    item = np.full(n, -1, dtype=np.int64)
    for kind, is_fresh in (("pop", False), ("fresh", True)):
        sel = via_topic & (fresh == is_fresh)
        item[sel] = samplers["topic", kind].sample(topic[sel], t[sel], u[sel])
        sel = ~via_topic & (fresh == is_fresh)
        item[sel] = samplers["all", kind].sample(np.zeros(int(sel.sum()), np.int64), t[sel], u[sel])
    missing = item < 0  # the user's topic had nothing released yet: fall back to global popularity
    item[missing] = samplers["all", "pop"].sample(np.zeros(int(missing.sum()), np.int64), t[missing],
                                                  u[missing])
    via_topic[missing] = False
    return item, t, via_topic


def _make_interactions(cfg: SyntheticConfig, rng: np.random.Generator, items: _Items,
                       users: _Users) -> dict[str, np.ndarray]:
    """Unique (user, item) pairs, exactly ``users.target[u]`` per user, each after the item's release."""
    fresh_w = items.popularity * np.exp((items.release - items.release.max()) / (cfg.freshness_days * DAY))
    samplers = {}
    for scope, group, n_groups in (("topic", items.topic, cfg.n_topics),
                                   ("all", np.zeros(cfg.n_items, np.int64), 1)):
        samplers[scope, "pop"] = _PrefixSampler(group, items.release, items.popularity, n_groups)
        samplers[scope, "fresh"] = _PrefixSampler(group, items.release, fresh_w, n_groups)

    cols = {"user": np.empty(0, np.int64), "item": np.empty(0, np.int64), "t": np.empty(0, np.int64),
            "via_topic": np.empty(0, bool)}
    deficit = users.target.copy()
    for round_ in range(60):
        who = np.repeat(np.arange(cfg.n_users), np.ceil(deficit * 1.3).astype(np.int64) + 2 * (deficit > 0))
        # later rounds lean on global popularity: a user may have exhausted their topics
        affinity = cfg.topic_affinity * (0.5 ** max(0, round_ - 4))
        item, t, via = _draw(cfg, rng, users, samplers, who, affinity)
        cols = {"user": np.concatenate([cols["user"], who]), "item": np.concatenate([cols["item"], item]),
                "t": np.concatenate([cols["t"], t]), "via_topic": np.concatenate([cols["via_topic"], via])}
        # keep the first draw of each (user, item) pair, then the first target[u] pairs of each user
        _, first = np.unique(cols["user"] * cfg.n_items + cols["item"], return_index=True)
        first.sort()
        cols = {k: v[first] for k, v in cols.items()}
        order = np.argsort(cols["user"], kind="stable")
        starts = np.searchsorted(cols["user"][order], np.arange(cfg.n_users))
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order)) - starts[cols["user"][order]]
        keep = rank < users.target[cols["user"]]
        cols = {k: v[keep] for k, v in cols.items()}
        deficit = users.target - np.bincount(cols["user"], minlength=cfg.n_users)
        if not deficit.any():
            break
    else:  # pragma: no cover - guarded by the config checks (user_cap)
        raise RuntimeError("synthetic generator could not give every user enough distinct items")
    if cfg.cover_all_items:
        _cover_all_items(cfg, rng, items, cols)
    return cols


def _cover_all_items(cfg: SyntheticConfig, rng: np.random.Generator, items: _Items,
                     cols: dict[str, np.ndarray]) -> None:
    """Give each never-drawn item one interaction, taken from a later draw of its topic.

    PixelRec lists only items someone interacted with. The moved draw keeps its user and time (so it
    stays after the release) and comes from an item with >= 2 interactions, so no item empties.
    """
    for round_ in range(20):
        counts = np.bincount(cols["item"], minlength=cfg.n_items)
        zero = np.flatnonzero(counts == 0)
        if len(zero) == 0:
            return
        same_topic = round_ < 10
        row_group = items.topic[cols["item"]] if same_topic else np.zeros(len(cols["item"]), np.int64)
        zero_group = items.topic[zero] if same_topic else np.zeros(len(zero), np.int64)
        big = int(cols["t"].max() - min(items.release.min(), cols["t"].min()) + 1)
        base = min(items.release.min(), int(cols["t"].min()))
        key = row_group * big + (cols["t"] - base)
        order = np.argsort(key, kind="stable")
        key = key[order]
        lo = np.searchsorted(key, zero_group * big + (items.release[zero] - base), side="left")
        hi = np.searchsorted(key, (zero_group + 1) * big, side="left")
        ok = lo < hi
        pick = order[lo[ok] + np.floor(rng.random(int(ok.sum())) * (hi[ok] - lo[ok])).astype(np.int64)]
        new_item = zero[ok]
        _, first = np.unique(pick, return_index=True)  # one zero item per row
        pick, new_item = pick[first], new_item[first]
        donor = cols["item"][pick]
        by_donor = np.argsort(donor, kind="stable")
        starts = np.searchsorted(donor[by_donor], donor[by_donor])
        rank = np.empty(len(pick), np.int64)
        rank[by_donor] = np.arange(len(pick)) - starts
        allowed = rank < counts[donor] - 1  # the donor keeps at least one interaction
        cols["item"][pick[allowed]] = new_item[allowed]
        cols["via_topic"][pick[allowed]] = False


def _text(rng: np.random.Generator, topic: np.ndarray, n_min: int, n_max: int, topic_share: float,
          vocab: np.ndarray) -> pa.Array:
    """One string per item: ``n_min..n_max`` words, topic words mixed with generic filler."""
    n = len(topic)
    lengths = rng.integers(n_min, n_max + 1, n)
    owner = np.repeat(np.arange(n), lengths)
    from_topic = rng.random(len(owner)) < topic_share
    topic_word = vocab[topic[owner], rng.integers(0, vocab.shape[1], len(owner))]
    filler = len(CONTENT_WORDS) + rng.integers(0, len(FILLER_WORDS), len(owner))
    words = pa.array(CONTENT_WORDS + FILLER_WORDS).take(pa.array(np.where(from_topic, topic_word, filler)))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), words), " ")


def _count_text(values: np.ndarray, as_float: np.ndarray, missing: np.ndarray) -> pl.Series:
    """Counts as CSV text: integers, some written ``1234.0`` (as PixelRec has), some empty."""
    text = pl.Series(values).cast(pl.Utf8)
    text = pl.select(pl.when(pl.lit(pl.Series(as_float))).then(text + ".0").otherwise(text)).to_series()
    return text.scatter(np.flatnonzero(missing), None)


def _make_item_table(cfg: SyntheticConfig, rng: np.random.Generator, drng: np.random.Generator,
                     items: _Items, item_ids: np.ndarray, n_inter: np.ndarray) -> tuple[pl.DataFrame, dict]:
    n = cfg.n_items
    keys = rng.random((cfg.n_topics, len(CONTENT_WORDS)))
    vocab = np.argsort(keys, axis=1)[:, : cfg.vocab_per_topic]  # distinct words per topic
    title = _text(rng, items.topic, cfg.title_words_min, cfg.title_words_max, cfg.title_topic_share, vocab)
    description = _text(rng, items.topic, cfg.description_words_min, cfg.description_words_max,
                        cfg.description_topic_share, vocab)
    df = pl.DataFrame({schema.ITEM_ID: item_ids.astype(str), "title": pl.Series(title),
                       "description": pl.Series(description)})
    df = df.with_columns(
        (pl.col("title").str.slice(0, 1).str.to_uppercase() + pl.col("title").str.slice(1)),
        (pl.col("description").str.slice(0, 1).str.to_uppercase() + pl.col("description").str.slice(1)
         + "."),
    )
    # counts: lifetime totals that follow realised popularity, with lognormal noise
    views = np.floor((n_inter + 1) * 150 * rng.lognormal(0, cfg.count_noise_sigma, n)).astype(np.int64)
    fractions = {"view_number": 1.0, "comment_number": 0.01, "thumbup_number": 0.05, "share_number": 0.005,
                 "coin_number": 0.01, "favorite_number": 0.02, "barrage_number": 0.02}
    as_float = np.zeros(n, bool)
    as_float[drng.choice(n, _n_defects(cfg.float_count_rate, n), replace=False)] = True
    missing_items = drng.choice(n, _n_defects(cfg.missing_count_rate, n), replace=False)
    missing = np.zeros((n, len(schema.COUNT_COLUMNS)), bool)
    missing[missing_items] = drng.random((len(missing_items), len(schema.COUNT_COLUMNS))) < 0.5
    missing[missing_items, drng.integers(0, len(schema.COUNT_COLUMNS), len(missing_items))] = True
    counts = {}
    for j, col in enumerate(schema.COUNT_COLUMNS):
        noise = rng.lognormal(0, cfg.count_noise_sigma, n)
        value = views if col == "view_number" else np.floor(views * fractions[col] * noise).astype(np.int64)
        counts[col] = _count_text(value, as_float, missing[:, j])
    names = np.array(tag_names(cfg.n_tags), dtype=object)
    df = df.with_columns(pl.Series(schema.TAG, names[items.topic % cfg.n_tags].astype(str)), **counts)

    # text defects
    empty = drng.choice(n, _n_defects(cfg.empty_title_rate, n), replace=False)
    rest = np.setdiff1d(np.arange(n), empty)
    non_ascii = drng.choice(rest, min(len(rest), _n_defects(cfg.non_ascii_title_rate, n)), replace=False)
    quoted = drng.choice(n, _n_defects(cfg.quoted_description_rate, n), replace=False)
    fragment = pl.Series(np.array(NON_ASCII, dtype=object)[np.arange(len(non_ascii)) % len(NON_ASCII)]
                         .astype(str))
    title_col = df["title"].scatter(non_ascii, fragment + " " + df["title"].gather(non_ascii))
    title_col = title_col.scatter(empty, None)
    desc = df["description"].gather(quoted)
    quote = 'She said "' + desc.str.split(" ").list.slice(0, 2).list.join(" ") + ', really," and ' + desc
    df = df.with_columns(title_col.alias(schema.TITLE),
                         df["description"].scatter(quoted, quote).alias(schema.DESCRIPTION))
    defects = {"empty_title": empty, "non_ascii_title": non_ascii, "quoted_description": quoted,
               "missing_counts": missing_items, "float_counts": np.flatnonzero(as_float)}
    return df.select(schema.ITEM_COLUMNS), {"vocab": vocab, **defects}


def _make_styles(cfg: SyntheticConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    k = cfg.n_styles
    return {
        "pattern": np.arange(k) % len(PATTERNS),
        "color_a": rng.uniform(0.05, 0.95, (k, 3)),
        "color_b": rng.uniform(0.05, 0.95, (k, 3)),
        "angle": rng.uniform(0, np.pi, k),
        "frequency": rng.uniform(2.0, 6.0, k),
    }


def topic_style(topic: np.ndarray, n_tags: int, n_styles: int) -> np.ndarray:
    """Style of a topic: topics of one style have different tags, topics of one tag different styles."""
    return (topic % n_tags + topic // n_tags) % n_styles


def _render(cfg: SyntheticConfig, rng: np.random.Generator, styles: dict, style: np.ndarray) -> np.ndarray:
    """uint8 (B, H, W, 3) covers: the style's palette and pattern plus per-item jitter and noise.

    float32, and each item computes only its own pattern (separable where possible): this is the
    generator's hot loop at the pixelrec50k scale.
    """
    f32 = np.float32
    b, size = len(style), cfg.cover_size
    grid = ((np.arange(size) + 0.5) / size).astype(f32)
    angle = (styles["angle"][style] + rng.normal(0, 0.15, b)).astype(f32)
    freq = (2 * np.pi * styles["frequency"][style] * rng.lognormal(0, 0.1, b)).astype(f32)
    phase = rng.uniform(0, 2 * np.pi, b).astype(f32)
    center = rng.uniform(0.3, 0.7, (b, 2)).astype(f32)
    blob_centers = rng.uniform(0, 1, (b, 4, 2)).astype(f32)
    pattern = styles["pattern"][style]
    field = np.empty((b, size, size), f32)
    for p in range(len(PATTERNS)):
        idx = np.flatnonzero(pattern == p)
        if len(idx) == 0:
            continue
        fr, ph = freq[idx, None, None], phase[idx, None, None]
        y, x = grid[None, :, None], grid[None, None, :]  # (1, H, 1), (1, 1, W)
        if PATTERNS[p] == "stripes":
            ang = angle[idx, None, None]
            field[idx] = np.sin(fr * (x * np.cos(ang) + y * np.sin(ang)) + ph)
        elif PATTERNS[p] == "checker":
            field[idx] = np.sin(fr * x + ph) * np.sin(fr * y + ph)
        elif PATTERNS[p] == "rings":
            r = np.sqrt((x - center[idx, 0, None, None]) ** 2 + (y - center[idx, 1, None, None]) ** 2)
            field[idx] = np.sin(fr * r + ph)
        else:  # blobs: max of 4 separable Gaussians (B, 4, H, 1) * (B, 4, 1, W)
            k = (fr[:, None] / np.pi) ** 2
            gx = np.exp(-k * (grid[None, None, None, :] - blob_centers[idx, :, 0, None, None]) ** 2)
            gy = np.exp(-k * (grid[None, None, :, None] - blob_centers[idx, :, 1, None, None]) ** 2)
            field[idx] = 2 * (gx * gy).max(axis=1) - 1
    v = (0.5 + 0.5 * np.tanh(2.5 * field))[..., None]  # (B, H, W, 1) in [0, 1]
    a = (styles["color_a"][style] + rng.normal(0, 0.04, (b, 3))).astype(f32)[:, None, None, :]
    c = (styles["color_b"][style] + rng.normal(0, 0.04, (b, 3))).astype(f32)[:, None, None, :]
    img = a + (c - a) * v  # (B, H, W, 3)
    # uniform pixel noise with std cover_noise, from raw bytes: 25x cheaper than Gaussian draws
    noise = np.frombuffer(rng.bytes(img.size), np.uint8).reshape(img.shape).astype(f32)
    img += (noise * f32(1 / 255) - f32(0.5)) * f32(2 * np.sqrt(3) * cfg.cover_noise)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def _write_covers(cfg: SyntheticConfig, rng: np.random.Generator, drng: np.random.Generator, styles: dict,
                  style: np.ndarray, item_ids: np.ndarray, out: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    n = cfg.n_items
    n_missing, n_corrupt = _n_defects(cfg.missing_cover_rate, n), _n_defects(cfg.corrupt_cover_rate, n)
    bad = drng.choice(n, min(n, n_missing + n_corrupt), replace=False)
    missing, corrupt = bad[:n_missing], bad[n_missing:]
    is_corrupt = np.zeros(n, bool)
    is_corrupt[corrupt] = True
    skip = np.zeros(n, bool)
    skip[missing] = True
    out.mkdir(parents=True, exist_ok=True)
    batch = 512  # bounds the scratch memory of _render (~30 MB at 64 px)
    for lo in range(0, n, batch):
        pixels = _render(cfg, rng, styles, style[lo:lo + batch])  # drawn for every item: stable streams
        for j, arr in enumerate(pixels):
            i = lo + j
            if skip[i]:
                continue
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="JPEG", quality=cfg.jpeg_quality)
            data = buf.getvalue()
            if is_corrupt[i]:
                data = data[: len(data) // 3]  # truncated: the header parses, the scan does not
            (out / f"{item_ids[i]}.jpg").write_bytes(data)
    return {"missing_cover": missing, "corrupt_cover": corrupt}


def _write(cfg: SyntheticConfig, out: Path) -> dict[str, Any]:
    rngs = _streams(cfg.seed)
    item_ids = _ids(rngs["ids"], "i", cfg.n_items)
    user_ids = _ids(rngs["ids"], "u", cfg.n_users)
    items, topic_share = _make_items(cfg, rngs["items"])
    users = _make_users(cfg, rngs["users"], topic_share)
    inter = _make_interactions(cfg, rngs["interactions"], items, users)
    n_inter = np.bincount(inter["item"], minlength=cfg.n_items)

    n_dup = _n_defects(cfg.duplicate_row_rate, len(inter["item"]))
    dup = np.sort(rngs["defects"].choice(len(inter["item"]), n_dup, replace=False))
    rows = np.concatenate([np.arange(len(inter["item"])), dup])
    table = pl.DataFrame({
        schema.ITEM_ID: item_ids[inter["item"][rows]].astype(str),
        schema.USER_ID: user_ids[inter["user"][rows]].astype(str),
        schema.TIMESTAMP: inter["t"][rows],
    }).sort([schema.TIMESTAMP, schema.USER_ID, schema.ITEM_ID], maintain_order=True)
    out.mkdir(parents=True, exist_ok=True)
    table.write_csv(out / schema.RAW_INTERACTIONS)

    item_table, text_truth = _make_item_table(cfg, rngs["text"], rngs["defects"], items, item_ids, n_inter)
    item_table.write_csv(out / schema.RAW_ITEMS)

    styles = _make_styles(cfg, rngs["covers"])
    style = topic_style(items.topic, cfg.n_tags, cfg.n_styles)
    cover_truth = _write_covers(cfg, rngs["covers"], rngs["defects"], styles, style, item_ids,
                                out / schema.RAW_COVERS)

    per_user = np.bincount(inter["user"], minlength=cfg.n_users)
    summary = {
        "source": "synthetic",
        "seed": cfg.seed,
        "n_users": cfg.n_users,
        "n_items": cfg.n_items,
        "n_interactions": len(inter["item"]),
        "n_rows": len(rows),
        "n_duplicate_rows": n_dup,
        "n_tags": len(np.unique(items.topic % cfg.n_tags)),
        "n_topics": cfg.n_topics,
        "n_covers": cfg.n_items - len(cover_truth["missing_cover"]),
        "items_without_interaction": int((n_inter == 0).sum()),
        "items_lt5_share": round(float((n_inter < 5).mean()), 4),
        "per_user_min": int(per_user.min()),
        "per_user_mean": round(float(per_user.mean()), 3),
        "per_user_median": float(np.median(per_user)),
        "per_user_max": int(per_user.max()),
        "defects": {k: len(v) for k, v in {**cover_truth, **text_truth}.items() if k != "vocab"}
                   | {"duplicate_rows": n_dup},
    }
    _write_truth(cfg, out / schema.RAW_TRUTH, item_ids, user_ids, items, users, inter, styles, style,
                 text_truth, cover_truth, n_inter, summary)
    return summary


def _write_truth(cfg, out: Path, item_ids, user_ids, items: _Items, users: _Users, inter, styles, style,
                 text_truth, cover_truth, n_inter, summary) -> None:
    """Diagnostics only (no stage reads them): what the generator planted."""
    out.mkdir(parents=True, exist_ok=True)
    flags = {}
    for name, idx in {**cover_truth, **{k: v for k, v in text_truth.items() if k != "vocab"}}.items():
        mask = np.zeros(cfg.n_items, bool)
        mask[idx] = True
        flags[name] = mask
    pl.DataFrame({
        schema.ITEM_ID: item_ids.astype(str), "topic": items.topic, "tag": items.topic % cfg.n_tags,
        "style": style, "popularity": items.popularity, "release_timestamp": items.release,
        "n_interactions": n_inter, **flags,
    }).write_parquet(out / "items.parquet", statistics=False)
    used = users.topics >= 0
    pl.DataFrame({
        schema.USER_ID: np.repeat(user_ids.astype(str), used.sum(axis=1)),
        "topic": users.topics[used], "weight": users.weights[used],
    }).write_parquet(out / "user_topics.parquet", statistics=False)
    pl.DataFrame({schema.USER_ID: user_ids.astype(str), "active_from": users.start, "active_to": users.end,
                  "n_interactions": users.target}).write_parquet(out / "users.parquet", statistics=False)
    words = np.array(CONTENT_WORDS)
    pl.DataFrame({
        "topic": np.arange(cfg.n_topics), "tag": np.arange(cfg.n_topics) % cfg.n_tags,
        "tag_name": np.array(tag_names(cfg.n_tags))[np.arange(cfg.n_topics) % cfg.n_tags],
        "style": topic_style(np.arange(cfg.n_topics), cfg.n_tags, cfg.n_styles),
        "vocabulary": [list(words[v]) for v in text_truth["vocab"]],
    }).write_parquet(out / "topics.parquet", statistics=False)
    pl.DataFrame({
        "style": np.arange(cfg.n_styles), "pattern": np.array(PATTERNS)[styles["pattern"]],
        "color_a": styles["color_a"].tolist(), "color_b": styles["color_b"].tolist(),
        "angle": styles["angle"], "frequency": styles["frequency"],
    }).write_parquet(out / "styles.parquet", statistics=False)
    pl.DataFrame({
        schema.USER_ID: user_ids[inter["user"]].astype(str), schema.ITEM_ID: item_ids[inter["item"]].astype(str),
        schema.TIMESTAMP: inter["t"], "via_topic": inter["via_topic"],
    }).write_parquet(out / "interactions.parquet", statistics=False)
    (out / "summary.json").write_text(json.dumps({"config": dataclasses.asdict(cfg), **summary},
                                                 indent=2, sort_keys=True) + "\n")


def generate(config: SyntheticConfig, out_dir: Path) -> dict[str, Any]:
    """Write the dataset to ``out_dir`` (replaced atomically) and return its summary."""
    with atomic_dir(Path(out_dir)) as tmp:
        return write_dataset(config, tmp)


def write_dataset(config: SyntheticConfig, out_dir: Path) -> dict[str, Any]:
    """Write into an existing (empty) directory; :func:`generate` is the atomic entry point."""
    return _write(config, Path(out_dir))


__all__ = ["PRESETS", "SyntheticConfig", "generate", "tag_names", "topic_style", "write_dataset"]
