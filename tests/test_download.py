"""The download stage's three sources, against real files, a real HTTP server and a real DVC repo."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import polars as pl
import py7zr
import pytest
import yaml
from dvc_repo import ROOT, _apply, make_dvc_repo, run_dvc, set_params
from http_server import serve
from real_params import real_config, real_section

from pixrec import schema
from pixrec.config import ConfigError
from pixrec.data.fetch import DownloadError, download, extract
from pixrec.data.sources import DataConfig, materialise
from pixrec.data.split import SplitConfig, split_raw
from pixrec.errors import InputError


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def covers_of(raw: Path) -> dict[str, str]:
    return {p.name: sha(p) for p in sorted((raw / schema.RAW_COVERS).iterdir())}


def make_archive(kind: str, covers: Path, out: Path) -> Path:
    """Cover archives as users meet them: nested in a top-level folder (zip, tar.gz) or flat (7z)."""
    files = sorted(covers.iterdir())
    if kind == "zip":
        path = out / "covers.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("__MACOSX/._junk.jpg", b"junk")
            for f in files:
                zf.write(f, f"covers/{f.name}")
    elif kind == "tar.gz":
        path = out / "covers.tar.gz"
        with tarfile.open(path, "w:gz") as tf:
            for f in files:
                tf.add(f, f"PixelRec50K/covers/{f.name}")
    else:
        path = out / "covers.7z"
        with py7zr.SevenZipFile(path, "w") as zf:
            for f in files:
                zf.write(f, f.name)
    return path


@pytest.fixture(scope="module")
def site(tiny_raw, tmp_path_factory) -> Path:
    """What a file-sharing host would hold: the two CSVs and the covers in three archive formats."""
    root = tmp_path_factory.mktemp("site")
    for name in (schema.RAW_INTERACTIONS, schema.RAW_ITEMS):
        shutil.copyfile(tiny_raw / name, root / name)
    for kind in ("zip", "tar.gz", "7z"):
        make_archive(kind, tiny_raw / schema.RAW_COVERS, root)
    return root


def data_section(**overrides) -> dict:
    """params.yaml's ``data`` section with ``overrides`` (a mapping merged key by key, e.g. ``url``)."""
    return _apply(real_section("data"), overrides)


def url_config(server, covers: str | None, **sha: str) -> DataConfig:
    return DataConfig.from_params(data_section(source="url", url={
        "interactions": server.url(schema.RAW_INTERACTIONS), "items": server.url(schema.RAW_ITEMS),
        "covers": server.url(covers) if covers else None, **sha}))


@pytest.mark.parametrize("archive", ["covers.zip", "covers.tar.gz", "covers.7z"])
def test_url_source_downloads_verifies_and_extracts(site, tiny_raw, tmp_path, archive):
    with serve(site) as server:
        config = url_config(server, archive, interactions_sha256=sha(site / schema.RAW_INTERACTIONS),
                            covers_sha256=sha(site / archive))
        summary = materialise(config, tmp_path / "raw")
    raw = tmp_path / "raw"
    for name in (schema.RAW_INTERACTIONS, schema.RAW_ITEMS):
        assert sha(raw / name) == sha(tiny_raw / name)
    assert covers_of(raw) == covers_of(tiny_raw)  # top-level folder flattened, junk skipped
    manifest = json.loads((raw / "download.json").read_text())
    assert manifest == json.loads(json.dumps(summary))
    files = manifest["files"]
    assert files["covers"]["sha256"] == sha(site / archive)
    assert files["interactions"]["sha256_verified"] and not files["items"]["sha256_verified"]
    assert files["items"]["bytes"] == (site / schema.RAW_ITEMS).stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no temp dir, no download cache left


def test_interrupted_transfer_resumes_with_range(site, tmp_path):
    target = site / schema.RAW_INTERACTIONS
    with serve(site) as server:
        server.drop_after[schema.RAW_INTERACTIONS] = 10_000  # the host drops the first connection
        got = download(server.url(schema.RAW_INTERACTIONS), tmp_path / "a.csv", sha(target), backoff=0.01)
        assert got.resumed_from == 10_000 and got.sha256 == sha(target) == sha(tmp_path / "a.csv")
        assert server.requests == [(schema.RAW_INTERACTIONS, None), (schema.RAW_INTERACTIONS, "bytes=10000-")]
        # across runs: a run that gives up keeps its .part, the next one continues from it. The host
        # drops the first connection after 5,000 bytes, then answers 503: the attempt that progressed
        # earns another try, the one that got nothing ends the run (retries=0)
        server.drop_after[schema.RAW_INTERACTIONS] = 5_000
        server.fail_with[schema.RAW_INTERACTIONS] = 503
        with pytest.raises(DownloadError, match=r"failed after 2 attempts, .*503.* kept in .*b\.csv\.part"):
            download(server.url(schema.RAW_INTERACTIONS), tmp_path / "b.csv", retries=0)
        assert (tmp_path / "b.csv.part").stat().st_size == 5_000 and not (tmp_path / "b.csv").exists()
        del server.fail_with[schema.RAW_INTERACTIONS]
        got = download(server.url(schema.RAW_INTERACTIONS), tmp_path / "b.csv", sha(target))
        assert got.resumed_from == 5_000 and sha(tmp_path / "b.csv") == sha(target)
        assert not (tmp_path / "b.csv.part").exists()


def test_wrong_checksum_and_missing_file_are_refused_clearly(site, tmp_path):
    wrong = "0" * 64
    with serve(site) as server:
        url = server.url(schema.RAW_ITEMS)
        with pytest.raises(DownloadError) as err:
            download(url, tmp_path / "items.csv", wrong)
        assert url in str(err.value) and wrong in str(err.value)
        assert sha(site / schema.RAW_ITEMS) in str(err.value)
        assert list(tmp_path.iterdir()) == []  # the bad file is gone
        with pytest.raises(DownloadError, match=r"HTTP 404"):
            download(server.url("nope.csv"), tmp_path / "nope.csv")
        # the same through the stage: one line on stderr, exit 1, nothing half-written
        params = tmp_path / "params.yaml"
        params.write_text(yaml.safe_dump({"data": data_section(source="url", url={
            "interactions": server.url("missing.csv"), "items": url})}))
        proc = subprocess.run([sys.executable, "-m", "stages.download", "--out", str(tmp_path / "raw"),
                               "--params", str(params)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:") and "404" in proc.stderr
    assert server.url("missing.csv") in proc.stderr
    assert not (tmp_path / "raw").exists()


def test_archive_cannot_write_outside_its_destination(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("covers/i1.jpg", b"x")
        zf.writestr("../../escaped.jpg", b"x")
    with pytest.raises(DownloadError, match="outside the destination"):
        extract(evil, tmp_path / "out")
    assert not (tmp_path / "escaped.jpg").exists() and not any((tmp_path / "out").rglob("*.jpg"))
    linked = tmp_path / "link.tar"
    with tarfile.open(linked, "w") as tf:
        info = tarfile.TarInfo("covers/i2.jpg")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    assert extract(linked, tmp_path / "out2") == []  # links are never extracted


def test_local_source_links_validates_and_splits(tiny_raw, tmp_path):
    config = DataConfig.from_params(data_section(source="local", local_dir=str(tiny_raw), link=True))
    summary = materialise(config, tmp_path / "raw")
    raw = tmp_path / "raw"
    assert summary["n_interaction_rows"] == 3_003 and summary["n_covers"] == len(covers_of(tiny_raw))
    # hard-linked, same file system
    assert os.path.samefile(raw / schema.RAW_ITEMS, tiny_raw / schema.RAW_ITEMS)
    assert covers_of(raw) == covers_of(tiny_raw) and not (raw / schema.RAW_TRUTH).exists()
    result = split_raw(raw, tmp_path / "split", real_config(SplitConfig))
    assert result["summary"]["n_interactions"] == 3_000
    copy = DataConfig.from_params(data_section(source="local", local_dir=str(tiny_raw), link=False))
    copied = materialise(copy, tmp_path / "copy")
    assert copied["files_linked"] == 0 and not os.path.samefile(tmp_path / "copy" / schema.RAW_ITEMS,
                                                               tiny_raw / schema.RAW_ITEMS)


def test_local_source_without_covers_warns_and_continues(tiny_raw, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in (schema.RAW_INTERACTIONS, schema.RAW_ITEMS):
        shutil.copyfile(tiny_raw / name, src / name)
    config = DataConfig.from_params(data_section(source="local", local_dir=str(src)))
    summary = materialise(config, tmp_path / "raw")
    assert summary["n_covers"] == 0 and "no covers folder or archive" in summary["warnings"][0]


@pytest.mark.parametrize(
    ("name", "lines", "message"),
    [
        (schema.RAW_INTERACTIONS, ["item_id,user,timestamp", "i1,u1,1"],
         r"row 1 \(header\) lacks column\(s\) \[.user_id.\]"),
        (schema.RAW_INTERACTIONS, ["item_id,user_id,timestamp", "i1,u1,1", "i2,u1"],
         "row 3 has 2 fields, the header has 3"),
        (schema.RAW_ITEMS, [",".join(schema.ITEM_COLUMNS), "i1,1,2,3,4,5,6,7,t,g,d",
                            'i2,1,2,3,4,5,6,7,"a, b",g,d,extra'],
         "row 3 has 12 fields, the header has 11"),
        (schema.RAW_INTERACTIONS, ["item_id,user_id,timestamp", 'i1,u1,1', 'i2,"u1,2', "i3,u1,3"], "row 3"),
    ],
)
def test_local_source_names_file_and_row_of_a_malformed_csv(tiny_raw, tmp_path, name, lines, message):
    src = tmp_path / "src"
    src.mkdir()
    for f in (schema.RAW_INTERACTIONS, schema.RAW_ITEMS):
        shutil.copyfile(tiny_raw / f, src / f)
    (src / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=message) as err:
        materialise(DataConfig.from_params(data_section(source="local", local_dir=str(src))),
                    tmp_path / "raw")
    assert str(src / name) in str(err.value)
    assert not (tmp_path / "raw").exists()


def test_data_config_mirrors_params_and_rejects_unknown_keys():
    section = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]
    config = DataConfig.from_params(section)
    assert config.source == section["source"] and config.url.covers is None
    with pytest.raises(ConfigError, match=r"data.sourc: unknown key; valid keys are \['encoding', 'link', "):
        DataConfig.from_params({**section, "sourc": "x"})
    with pytest.raises(ConfigError, match=r"data.url.cover: unknown key; valid keys are \['covers', "):
        DataConfig.from_params(data_section(url={"cover": "http://x"}))
    with pytest.raises(ConfigError, match=r"data.url.covers is missing"):
        DataConfig.from_params({**section, "url": {k: v for k, v in section["url"].items() if k != "covers"}})
    valid = r"valid names are \['local', 'synthetic', 'url'\]"
    with pytest.raises(ConfigError, match=r"unknown data source 'ftp'; " + valid):
        DataConfig.from_params(data_section(source="ftp"))
    with pytest.raises(ConfigError, match="not a sha256"):
        DataConfig.from_params(data_section(source="url", url={"interactions": "http://x", "items": "http://y",
                                                               "items_sha256": "abc"}))
    with pytest.raises(ConfigError, match=r"data\.local_dir"):
        DataConfig.from_params(data_section(source="local"))
    with pytest.raises(ConfigError, match=r"data.synthetic: unknown key"):
        DataConfig.from_params(data_section(synthetic={"users": 3}))


@pytest.mark.slow
def test_dvc_pipeline_download_then_split(tmp_path):
    """`dvc repro` in a real repo: runs both stages, then nothing, then only what a param change touches."""
    repo = make_dvc_repo(tmp_path, ["download", "split"], {"data.preset": "tiny"})
    first = run_dvc(repo, "repro", "split").stdout
    assert "Running stage 'download'" in first and "Running stage 'split'" in first
    assert "Data and pipelines are up to date" in run_dvc(repo, "repro").stdout
    set_params(repo, {"split.cold_cut_quantile": 0.8})
    rerun = run_dvc(repo, "repro").stdout
    assert "Running stage 'split'" in rerun and "Running stage 'download'" not in rerun
    # the stage output is leak-free: no test pair in train, every train row before the user's test row
    split = repo / "data" / "split"
    train, test = (pl.read_parquet(split / f) for f in (schema.TRAIN_FILE, schema.TEST_FILE))
    assert test.height == 150 and test.join(train, on=[schema.USER_IDX, schema.ITEM_IDX]).height == 0
    later = (train.join(test, on=schema.USER_IDX)
             .filter(pl.col(schema.TIMESTAMP) > pl.col(f"{schema.TIMESTAMP}_right")))
    assert later.height == 0
    report = json.loads((split / schema.SPLIT_REPORT).read_text())
    assert report["summary"]["n_cold_test"] > 0 and report["counts"][
        "interactions: repeated (user, item) pair collapsed to the earliest"] >= 1


def test_file_urls_and_already_verified_downloads(site, tmp_path):
    target = site / schema.RAW_ITEMS
    got = download(target.as_uri(), tmp_path / "items.csv", sha(target))
    assert got.sha256 == sha(target) and sha(tmp_path / "items.csv") == sha(target)
    with serve(site) as server:  # a verified file from an earlier run is not fetched again
        again = download(server.url(schema.RAW_ITEMS), tmp_path / "items.csv", sha(target))
        assert again.sha256 == sha(target) and server.requests == []


# --- real data as users hold it -------------------------------------------------------------------------
def pixelrec_release(tiny_raw: Path, root: Path, covers: str) -> Path:
    """The tiny data laid out as PixelRec ships: Pixel200K.csv, item_info.csv, covers nested or archived,
    with mixed image suffixes."""
    root.mkdir()
    shutil.copyfile(tiny_raw / schema.RAW_INTERACTIONS, root / "Pixel200K.csv")
    shutil.copyfile(tiny_raw / schema.RAW_ITEMS, root / schema.RAW_ITEMS)
    files = sorted((tiny_raw / schema.RAW_COVERS).iterdir())
    renamed = {f.name: (f.stem + ".JPG" if k % 3 == 0 else f.stem + ".jpeg" if k % 3 == 1 else f.name)
               for k, f in enumerate(files)}
    if covers == "nested":
        (root / "covers" / "covers").mkdir(parents=True)
        for f in files:
            shutil.copyfile(f, root / "covers" / "covers" / renamed[f.name])
    else:
        with py7zr.SevenZipFile(root / "cover.7z", "w") as zf:
            for f in files:
                zf.write(f, f"cover/{renamed[f.name]}")
    return root


@pytest.mark.parametrize("covers", ["nested", "7z"])
def test_local_source_takes_pixelrec_release_names(tiny_raw, tmp_path, covers):
    src = pixelrec_release(tiny_raw, tmp_path / "PixelRec", covers)
    config = DataConfig.from_params(data_section(source="local", local_dir=str(src)))
    summary = materialise(config, tmp_path / "raw")
    taken = "\n".join(summary["taken"])
    assert f"interactions <- {src / 'Pixel200K.csv'} (recognised name)" in taken
    assert f"covers <- {src / ('covers' if covers == 'nested' else 'cover.7z')} (recognised name)" in taken
    n = len(covers_of(tiny_raw))
    assert summary["n_covers"] == n
    assert sha(tmp_path / "raw" / schema.RAW_INTERACTIONS) == sha(src / "Pixel200K.csv")
    names = sorted(p.name for p in (tmp_path / "raw" / schema.RAW_COVERS).iterdir())  # flattened
    assert len(names) == n and {".JPG", ".jpeg", ".jpg"} == {Path(x).suffix for x in names}
    result = split_raw(tmp_path / "raw", tmp_path / "split", real_config(SplitConfig))
    paths = pl.read_parquet(tmp_path / "split" / schema.ITEMS_FILE)[schema.COVER_PATH].drop_nulls()
    assert paths.len() == n and "items: no cover file (masked by embed-images)" in result["counts"]
    assert result["counts"]["items: no cover file (masked by embed-images)"] == 250 - n


def test_local_files_name_each_file_and_ambiguity_is_refused(tiny_raw, tmp_path):
    src = pixelrec_release(tiny_raw, tmp_path / "PixelRec", "nested")
    shutil.copyfile(src / "Pixel200K.csv", src / "Pixel1M.csv")
    config = DataConfig.from_params(data_section(source="local", local_dir=str(src)))
    with pytest.raises(InputError, match=r"several candidates for the interactions file: \['Pixel1M.csv', "
                                         r"'Pixel200K.csv'\]; name one in params.yaml "
                                         r"data.local_files.interactions"):
        materialise(config, tmp_path / "raw")
    (src / schema.RAW_ITEMS).rename(tmp_path / "items.csv")
    config = DataConfig.from_params(data_section(source="local", local_dir=str(src), local_files={
        "interactions": "Pixel1M.csv", "items": str(tmp_path / "items.csv"), "covers": "covers/covers"}))
    summary = materialise(config, tmp_path / "raw")
    assert summary["taken"][0] == f"interactions <- {src / 'Pixel1M.csv'} (data.local_files.interactions)"
    assert summary["taken"][1] == f"items <- {tmp_path / 'items.csv'} (data.local_files.items)"
    assert summary["n_covers"] == len(covers_of(tiny_raw))


def test_download_stage_prints_which_file_was_taken(tiny_raw, tmp_path):
    src = pixelrec_release(tiny_raw, tmp_path / "PixelRec", "7z")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": data_section(source="local", local_dir=str(src))}))
    proc = subprocess.run([sys.executable, "-m", "stages.download", "--out", str(tmp_path / "raw"),
                           "--params", str(params)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert f"download: interactions <- {src / 'Pixel200K.csv'} (recognised name)" in proc.stdout
    assert f"download: covers <- {src / 'cover.7z'} (recognised name)" in proc.stdout


def test_failed_covers_checksum_keeps_the_verified_csvs(site, tmp_path):
    with serve(site) as server:
        bad = url_config(server, "covers.zip", interactions_sha256=sha(site / schema.RAW_INTERACTIONS),
                         covers_sha256="0" * 64)
        with pytest.raises(DownloadError, match="sha256 mismatch"):
            materialise(bad, tmp_path / "raw")
        assert not (tmp_path / "raw").exists()
        server.requests.clear()
        good = url_config(server, "covers.zip", interactions_sha256=sha(site / schema.RAW_INTERACTIONS),
                          covers_sha256=sha(site / "covers.zip"))
        materialise(good, tmp_path / "raw")
        assert [name for name, _ in server.requests] == ["covers.zip"]  # the CSVs came from the cache
    assert sha(tmp_path / "raw" / schema.RAW_ITEMS) == sha(site / schema.RAW_ITEMS)


def test_dead_host_and_closed_port_fail_fast_and_say_each_attempt(tmp_path, caplog):
    import time

    from http_server import closed_port_url, dead_host

    with dead_host() as url:  # accepts the connection, never sends a byte
        start = time.monotonic()
        with pytest.raises(DownloadError, match=r"failed after 1 attempts, nothing received for 2 s"):
            download(url, tmp_path / "a.csv", timeout=2.0)
        assert time.monotonic() - start < 5
    caplog.clear()
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"nothing received .*(Connection refused|URLError)"):
        download(closed_port_url(), tmp_path / "b.csv", timeout=3.0, backoff=0.2)
    assert time.monotonic() - start < 5
    attempts = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert len(attempts) >= 2 and "attempt 1 failed" in attempts[0] and "retrying in" in attempts[0]


@pytest.mark.slow
def test_synthetic_override_form_that_dvc_exp_run_accepts(tmp_path):
    """params.yaml and README show `-S '+data.synthetic.n_users=...'`: a real `dvc exp run` takes it."""
    repo = make_dvc_repo(tmp_path, ["download"], {"data.preset": "tiny"})
    run_dvc(repo, "exp", "run", "-S", "+data.synthetic.n_users=120")
    users = pl.read_csv(repo / "data" / "raw" / schema.RAW_INTERACTIONS)[schema.USER_ID].n_unique()
    assert users == 120
    assert "+data.synthetic.n_users=" in (ROOT / "params.yaml").read_text()
    assert "+data.synthetic.n_users=" in (ROOT / "README.md").read_text()


def _url_section(**url: str | float | None) -> DataConfig:
    return DataConfig.from_params(data_section(source="url", url=url))


def test_an_html_page_instead_of_a_csv_names_the_url_and_the_key(site, tmp_path):
    """A file-sharing host's sign-in page at the items URL: the error names that URL and
    data.url.items (not the download cache), and the page is not kept for the next run."""
    root = tmp_path / "host"
    root.mkdir()
    shutil.copyfile(site / schema.RAW_INTERACTIONS, root / schema.RAW_INTERACTIONS)
    (root / "items.csv").write_text("\n<!DOCTYPE html>\n<html><head><title>Sign in - FileBox</title></head>"
                                    "<body>...</body></html>\n")
    (root / "short.csv").write_text((site / schema.RAW_ITEMS).read_text().rstrip("\n") + "\ni_last,1\n")
    with serve(root) as server:
        params = tmp_path / "params.yaml"
        params.write_text(yaml.safe_dump({"data": data_section(source="url", url={
            "interactions": server.url(schema.RAW_INTERACTIONS), "items": server.url("items.csv")})}))
        proc = subprocess.run([sys.executable, "-m", "stages.download", "--out", str(tmp_path / "raw"),
                               "--params", str(params)], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr == (f"error: {server.url('items.csv')} (data.url.items): the server sent an HTML "
                               "page ('Sign in - FileBox'), not the CSV: a login, cookie or preview page? "
                               "Set data.url.items to the file's direct download link\n")
        assert not list((tmp_path / ".raw.downloads").glob("items-*"))  # fetched afresh next time
        # any other defect of a downloaded CSV names the URL and the key too, then the file and row
        config = _url_section(interactions=server.url(schema.RAW_INTERACTIONS), items=server.url("short.csv"))
        with pytest.raises(InputError, match=rf"^{re.escape(server.url('short.csv'))} \(data\.url\.items\): "
                                             r"\S+items-\w+\.download: not a readable CSV: row \d+ has 2"):
            materialise(config, tmp_path / "raw")


def test_a_truncated_zip_of_covers_is_called_so(site, tiny_raw, tmp_path):
    cut = tmp_path / "host" / "covers.zip"
    cut.parent.mkdir()
    cut.write_bytes((site / "covers.zip").read_bytes()[: (site / "covers.zip").stat().st_size // 2])
    for name in (schema.RAW_INTERACTIONS, schema.RAW_ITEMS):
        shutil.copyfile(site / name, cut.parent / name)
    with serve(cut.parent) as server:
        config = url_config(server, "covers.zip")
        says = (rf"^{re.escape(server.url('covers.zip'))} \(data\.url\.covers\): the download is a truncated "
                r"or corrupt zip archive .*removed it, run again to download it afresh")
        with pytest.raises(InputError, match=says):
            materialise(config, tmp_path / "raw")
        assert not list((tmp_path / ".raw.downloads").glob("covers-*"))
    src = tmp_path / "local"
    src.mkdir()
    for name in (schema.RAW_INTERACTIONS, schema.RAW_ITEMS):
        shutil.copyfile(tiny_raw / name, src / name)
    shutil.copyfile(cut, src / "covers.zip")
    says = rf"^{re.escape(str(src / 'covers.zip'))}: \S+ is a truncated or corrupt zip archive \(.*\); "
    with pytest.raises(InputError, match=says + "copy or download it again$"):
        materialise(DataConfig.from_params(data_section(source="local", local_dir=str(src))),
                    tmp_path / "raw")


@pytest.mark.parametrize("host", ["dead", "stalled"])
def test_a_silent_host_fails_within_data_url_timeout_s(tmp_path, host):
    """data.url.timeout_s bounds the wait for a host that accepts and never answers, or answers the
    headers and never the body: the stage's own time (PIXREC_STAGE_LOG, interpreter start excluded)
    stays within the timeout and a small margin."""
    from http_server import dead_host, stalled_host

    timeout = 1.5
    with (dead_host if host == "dead" else stalled_host)() as url:
        start = time.monotonic()
        with pytest.raises(DownloadError, match=r"nothing received for \d+ s"):
            download(url, tmp_path / "a.csv", timeout=timeout)
        assert timeout <= time.monotonic() - start < timeout + 0.5
        params, log = tmp_path / "params.yaml", tmp_path / "stages.jsonl"
        params.write_text(yaml.safe_dump({"data": data_section(source="url", url={
            "interactions": url, "items": url, "timeout_s": timeout})}))
        proc = subprocess.run([sys.executable, "-m", "stages.download", "--out", str(tmp_path / "raw"),
                               "--params", str(params)], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PIXREC_STAGE_LOG": str(log)})
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: {url}: download failed after 1 attempts")
    assert json.loads(log.read_text())["wall_s"] < timeout + 0.5
