"""``intake export --bundle``: the workbook and the forms beside it, its links relative, names made safe."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook
from report_factories import SHANGHAI, attachment, project, sample_ledger
from support import SENDERS, config_toml, make_config, on_time

from intake.compose import compose
from intake.models import Ledger
from reports.bundle import FORMS_DIR, BundleError, form_names, safe_name, write_bundle
from samples.forms import form_pdf
from samples.projects import sample_project
from samples.tables import summary_table_xlsx

HOSTILE_NAMES = [
    "../../../../tmp/escaped.pdf", "..\\..\\windows\\escaped.pdf", "/etc/passwd.pdf", "C:\\Users\\x.pdf",
    "CON.pdf", "nul", ".hidden.pdf", "..", "a\x00b\x1f.pdf", "%2e%2e%2fescaped.pdf", "申报书 #1?.pdf",
    "very" * 60 + ".pdf", "",
]


def archive_forms(ledger: Ledger, data_dir: Path) -> None:
    """Put a distinct file where each project's form is archived."""
    for p in ledger.projects:
        if p.form is not None:
            path = data_dir / p.form.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"%PDF-1.4 {p.number}".encode())


def link_targets(workbook: Path) -> dict[str, str]:
    """Every hyperlink of the workbook (all in 项目台账's 申报书文件): the row's 受理编号 → target."""
    book = load_workbook(workbook)
    links = {}
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.hyperlink is not None:
                    assert ws.title == "项目台账" and ws.cell(1, c.column).value == "申报书文件"
                    links[row[0].value] = c.hyperlink.target
    return links


def assert_links_resolve(workbook: Path, data_dir: Path, ledger: Ledger) -> None:
    """Each form's link, read relative to the workbook's folder, is a copy of that form inside the bundle."""
    links = link_targets(workbook)
    forms = [p for p in ledger.projects if p.form is not None]
    assert len(links) == len(forms) and links
    root = workbook.parent.resolve()
    for p in forms:
        target = links[p.number]
        assert not Path(target).is_absolute() and "\\" not in target
        path = (root / unquote(target)).resolve()
        assert path.is_file(), target
        assert path.parent == root / FORMS_DIR
        assert path.read_bytes() == (data_dir / p.form.path).read_bytes()


def test_a_bundle_folder_works_after_being_copied(tmp_path: Path) -> None:
    """The folder's workbook links to the copies beside it; copied elsewhere, the links still resolve."""
    ledger, messages, replies = sample_ledger(12, 8)
    data = tmp_path / "var"
    archive_forms(ledger, data)
    workbook = write_bundle(tmp_path / "bundle", ledger, messages, replies, SHANGHAI, data_dir=data)
    assert workbook == (tmp_path / "bundle" / "ledger.xlsx").resolve()
    assert_links_resolve(workbook, data, ledger)
    moved = shutil.copytree(tmp_path / "bundle", tmp_path / "pc" / "U盘" / "台账")
    shutil.rmtree(tmp_path / "bundle")
    assert_links_resolve(moved / "ledger.xlsx", data, ledger)
    names = sorted(p.name for p in (moved / FORMS_DIR).iterdir())
    assert names[0].startswith("XZ2024-云龙-001-") and all(n.endswith(".pdf") for n in names)


def test_a_bundle_zip_unpacks_to_working_links(tmp_path: Path) -> None:
    """A target ending in .zip holds ledger.xlsx and 申报书/; unpacked anywhere, every link resolves."""
    ledger, messages, replies = sample_ledger(12, 8)
    data = tmp_path / "var"
    archive_forms(ledger, data)
    target = write_bundle(tmp_path / "out" / "台账.zip", ledger, messages, replies, SHANGHAI, data_dir=data)
    assert target == tmp_path / "out" / "台账.zip"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["台账.zip"], "no temporary folder left"
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
        assert names[0] == "ledger.xlsx"
        assert all(n == "ledger.xlsx" or n.startswith(f"{FORMS_DIR}/") for n in names)
        z.extractall(tmp_path / "unpacked")
    assert_links_resolve(tmp_path / "unpacked" / "ledger.xlsx", data, ledger)


def test_sender_file_names_never_leave_the_bundle(tmp_path: Path) -> None:
    """Forms named like paths, devices, hidden files or nothing land in 申报书/ under safe, distinct names,
    in a folder and in a zip; nothing is written anywhere else."""
    projects = [project(f"XZ2024-云龙-{i:03}", form=attachment(name or "x", id=100 + i))
                for i, name in enumerate(HOSTILE_NAMES, 1)]
    projects[-1].form = attachment("", id=999)
    projects.append(project("../XZ2024/../../001", form=attachment("../../a.pdf", id=1000)))
    ledger = Ledger(projects, [], {"云龙区": 3})
    data = tmp_path / "var"
    archive_forms(ledger, data)
    before = {p for p in tmp_path.rglob("*")}
    write_bundle(tmp_path / "b" / "bundle", ledger, [], {}, SHANGHAI, data_dir=data)
    written = {p for p in tmp_path.rglob("*")} - before
    bundle = (tmp_path / "b" / "bundle").resolve()
    assert all(p.resolve().is_relative_to(bundle) or p == tmp_path / "b" for p in written), written
    copies = sorted((bundle / FORMS_DIR).iterdir())
    assert len(copies) == len(projects) and len({p.name.lower() for p in copies}) == len(projects)
    for copy in copies:
        assert not copy.name.startswith(".") and "\\" not in copy.name and ":" not in copy.name
        assert copy.name.split(".")[0].upper() not in {"CON", "NUL"} and len(copy.name) < 120
    assert_links_resolve(bundle / "ledger.xlsx", data, ledger)

    zipped = write_bundle(tmp_path / "b" / "bundle.zip", ledger, [], {}, SHANGHAI, data_dir=data)
    with zipfile.ZipFile(zipped) as z:
        for name in z.namelist():
            assert not name.startswith("/") and ".." not in name.split("/") and "\\" not in name


def test_safe_name_keeps_chinese_and_drops_everything_path_like() -> None:
    """Letters of any script, digits and ordinary marks stay; separators, dots in front, devices do not."""
    assert safe_name("徐工集团（高价值）申报书.pdf") == "徐工集团(高价值)申报书.pdf"
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("..\\..\\x.pdf") == "x.pdf"
    assert safe_name("CON.pdf") == "_CON.pdf" and safe_name("lpt1") == "_lpt1"
    assert safe_name(".bashrc") == "bashrc" and safe_name("..") == "申报书" and safe_name("") == "申报书"
    assert safe_name("a b#c%d?.pdf") == "a_b_c_d.pdf"
    assert "/" not in safe_name("a/b") and "\x00" not in safe_name("a\x00b")


def test_two_forms_of_the_same_name_get_distinct_copies() -> None:
    """Names are unique within the bundle, also when only the letter case differs."""
    ledger = Ledger([project("X-1", form=attachment("A.pdf", id=1)), project("X-1", form=attachment("a.pdf", id=2))],
                    [], {})
    assert sorted(form_names(ledger).values()) == [f"{FORMS_DIR}/X-1-A.pdf", f"{FORMS_DIR}/X-1-a-2.pdf"]


def test_a_file_where_the_bundle_folder_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bundle").write_text("not a folder")
    with pytest.raises(BundleError):
        write_bundle(tmp_path / "bundle", Ledger([], [], {}), [], {}, SHANGHAI, data_dir=tmp_path)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "intake.cli", *args], capture_output=True, text=True, timeout=120)


def test_export_bundle_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A district's mail imported, then ``intake export --bundle DIR`` and ``--bundle FILE.zip``: the form
    received is beside the workbook and its link opens it."""
    monkeypatch.setenv("INTAKE_IMAP_PASSWORD", "unused")
    cfg = make_config(tmp_path / "var", imap={"host": "127.0.0.1", "port": 1, "user": "x@163.com",
                                              "password_env": "INTAKE_IMAP_PASSWORD"}, smtp={"host": "127.0.0.1",
                                                                                               "port": 9})
    config = tmp_path / "config.toml"
    config.write_text(config_toml(cfg), encoding="utf-8")
    p = sample_project(0)
    form = form_pdf(p.form)
    eml = tmp_path / "mail.eml"
    eml.write_bytes(compose(sender=SENDERS["云龙区"], subject="申报材料", message_id="<b1@example.cn>",
                            arrival=on_time(5), attachments=[("汇总表.xlsx", summary_table_xlsx("云龙区", [p.row])),
                                                             ("../../申报书.pdf", form)]))
    assert run("import", "--config", str(config), str(eml)).returncode == 0

    folder = run("export", "--config", str(config), "--bundle", str(tmp_path / "bundle"))
    assert folder.returncode == 0, folder.stderr
    workbook = Path(folder.stdout.strip())
    assert workbook == (tmp_path / "bundle" / "ledger.xlsx").resolve()
    [target] = link_targets(workbook).values()
    assert (workbook.parent / unquote(target)).read_bytes() == form
    assert load_workbook(workbook).properties.title == f"{cfg.campaign.name}项目台账"

    zipped = run("export", "--config", str(config), "--bundle", str(tmp_path / "台账.zip"))
    assert zipped.returncode == 0, zipped.stderr
    with zipfile.ZipFile(tmp_path / "台账.zip") as z:
        z.extractall(tmp_path / "unzipped")
    [target] = link_targets(tmp_path / "unzipped" / "ledger.xlsx").values()
    assert (tmp_path / "unzipped" / unquote(target)).read_bytes() == form
