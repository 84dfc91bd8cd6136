"""extract.py and rootdir.py on single tar streams (no CLI): the finer changeset rules."""

import io
import os
import stat

import pytest

from mocker_bundle.extract import unpack_layer
from mocker_common.inroot import make_dirs as make_dirs_in_root, read_file as read_file_in_root
from tests.conftest import need_root
from tests.fixtures import images as fx


@pytest.fixture
def tree(tmp_path):
    need_root()
    root = tmp_path / "rootfs"
    root.mkdir()
    return root


def apply(root, entries, overlay=False):
    unpack_layer(io.BytesIO(fx.tar_bytes(entries)), root, overlay=overlay, what="test layer")


def test_symlink_inside_the_root_is_followed_in_merged_form(tree):
    apply(tree, [fx.directory("usr"), fx.directory("usr/lib"), fx.symlink("lib", "usr/lib")])
    apply(tree, [fx.file("lib/x.so", "x")])
    assert (tree / "usr/lib/x.so").read_text() == "x"
    assert os.readlink(tree / "lib") == "usr/lib"


def test_symlink_chain_with_dotdot_inside_the_root(tree):
    apply(tree, [fx.directory("a"), fx.directory("b"), fx.symlink("a/up", ".."),
                 fx.symlink("a/tob", "up/b"), fx.file("a/tob/f", "through two links")])
    assert (tree / "b/f").read_text() == "through two links"


def test_symlink_loop_is_an_error_not_a_hang(tree):
    from mocker_common.errors import Corrupt
    with pytest.raises(Corrupt, match="symlinks"):
        apply(tree, [fx.symlink("l1", "l2"), fx.symlink("l2", "l1"), fx.file("l1/f", "")])


def test_opaque_after_its_siblings_keeps_them_merged_form(tree):
    apply(tree, [fx.directory("d"), fx.file("d/old", "old"), fx.directory("d/sub"),
                 fx.file("d/sub/old", "old")])
    apply(tree, [fx.directory("d"), fx.directory("d/sub"), fx.file("d/sub/new", "new"),
                 fx.file("d/new", "new"), fx.opaque("d")])
    assert sorted(os.listdir(tree / "d")) == ["new", "sub"]
    assert sorted(os.listdir(tree / "d/sub")) == ["new"]


def test_whiteout_never_hides_its_own_layer(tree):
    apply(tree, [fx.file("f", "lower")])
    apply(tree, [fx.file("f", "upper"), fx.whiteout("f")])
    assert (tree / "f").read_text() == "upper"


@pytest.mark.parametrize("overlay", [False, True], ids=["merged", "overlay"])
def test_setuid_owner_and_capability_survive_in_either_order(tree, overlay):
    cap = fx._capability_xattr(fx.CAP_NET_RAW)
    apply(tree, [fx.file("suid", "x", mode=0o6755, uid=1000, gid=1000,
                         xattrs={"security.capability": cap})], overlay=overlay)
    st = (tree / "suid").lstat()
    assert stat.S_IMODE(st.st_mode) == 0o6755 and (st.st_uid, st.st_gid) == (1000, 1000)
    assert os.getxattr(tree / "suid", "security.capability") == cap


def test_overlay_form_markers(tree):
    apply(tree, [fx.whiteout("gone"), fx.opaque("hidden"), fx.file("hidden/kept", "k")],
          overlay=True)
    st = (tree / "gone").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(tree / "hidden", "trusted.overlay.opaque") == b"y"
    assert not (tree / ".wh.gone").exists()


def test_layer_may_not_set_overlay_xattrs(tree):
    apply(tree, [fx.directory("d", xattrs={"trusted.overlay.redirect": b"/etc",
                                           "user.fine": b"1"})], overlay=True)
    assert os.listxattr(tree / "d") == ["user.fine"]


def test_container_view_resolves_symlinks_inside_the_root(tree, tmp_path):
    """/etc/passwd as the container sees it: absolute links start again at the rootfs,
    `..` stops at it; the host's files are never read."""
    (tmp_path / "host-passwd").write_text("root:x:0:0:HOST:/:/bin/sh\n")
    apply(tree, [fx.directory("etc"), fx.file("etc/real", "image passwd\n"),
                 fx.symlink("etc/passwd", str(tmp_path / "host-passwd")),
                 fx.symlink("etc/group", "../" * 20 + "etc/real"),
                 fx.symlink("etc/abs", "/etc/real"),
                 fx.symlink("etc2", str(tmp_path))])
    assert read_file_in_root(tree, "/etc/passwd") is None        # rootfs/<tmp>/host-passwd
    assert read_file_in_root(tree, "/etc/group") == b"image passwd\n"
    assert read_file_in_root(tree, "/etc/abs") == b"image passwd\n"
    assert read_file_in_root(tree, "/etc2/host-passwd") is None
    assert read_file_in_root(tree, "/../../etc/real") == b"image passwd\n"
    make_dirs_in_root(tree, "/etc2/made")                       # inside the rootfs
    assert (tree / tmp_path.relative_to("/") / "made").is_dir()
    assert not (tmp_path / "made").exists()
