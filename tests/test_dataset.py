"""The data contract: every bad input is one clear GrocerError naming what and where."""

import pandas as pd
import pytest

from support.dataset import write_dataset
from grocer.dataset import load_contract, resolve
from grocer.errors import GrocerError
from grocer.params import DataParams


def data_params(root, group_col="group"):
    return DataParams(dir=str(root), id_col="image_id", label_col="label", group_col=group_col)


def test_contract_resolves_every_image(tmp_path):
    root = write_dataset(tmp_path / "d")
    contract = load_contract(data_params(root))
    assert len(contract.train) == 36 and len(contract.test) == 9
    assert contract.classes == ["class0", "class1", "class2"]
    assert all(p.endswith(".png") for p in contract.train["path"])


def test_ids_without_extension_and_flat_train_folder(tmp_path):
    root = write_dataset(tmp_path / "d")
    train = pd.read_csv(root / "train.csv")
    for row in train.itertuples():
        (root / "train" / row.label / row.image_id).rename(root / "train" / row.image_id)
    train["image_id"] = train["image_id"].str.removesuffix(".png")
    train.to_csv(root / "train.csv", index=False)
    contract = load_contract(data_params(root))
    assert contract.train["path"].str.match(r".*/train/tr_\d_\d{3}\.png$").all()


def test_no_group_column(tmp_path):
    root = write_dataset(tmp_path / "d", with_groups=False)
    contract = load_contract(data_params(root, group_col=None))
    assert contract.train["group"].isna().all()


def corrupt(root, how):
    train = pd.read_csv(root / "train.csv")
    if how == "missing_file":
        (root / "train" / "class1" / "tr_1_004.png").unlink()
    elif how == "duplicate_id":
        pd.concat([train, train.iloc[[3]]]).to_csv(root / "train.csv", index=False)
    elif how == "singleton_label":
        train.loc[0, "label"] = "lonely"
        (root / "train" / "lonely").mkdir()
        (root / "train" / "class0" / train.loc[0, "image_id"]).rename(root / "train" / "lonely" / train.loc[0, "image_id"])
        train.to_csv(root / "train.csv", index=False)
    elif how == "missing_column":
        train.drop(columns="label").to_csv(root / "train.csv", index=False)
    elif how == "not_csv":
        (root / "train.csv").write_bytes(b'image_id,label\n"unterminated,x\n')
    elif how == "traversal_id":
        train.loc[0, "image_id"] = "../../etc/passwd"
        train.to_csv(root / "train.csv", index=False)
    elif how == "submission_ids":
        sub = pd.read_csv(root / "sample_submission.csv")
        sub.loc[0, "image_id"] = "te_999.png"
        sub.to_csv(root / "sample_submission.csv", index=False)
    elif how == "folder_id":
        (root / "train" / "class0" / "sub").mkdir()
        (root / "train" / "class0" / "tr_0_000.png").rename(root / "train" / "class0" / "sub" / "tr_0_000.png")
        train.loc[0, "image_id"] = "sub/tr_0_000.png"
        train.to_csv(root / "train.csv", index=False)
    elif how == "not_utf8":
        lines = (root / "train.csv").read_bytes().split(b"\n")
        lines[2] = lines[2].replace(b"class0", "cl\u00e4ss0".encode("latin-1"))
        (root / "train.csv").write_bytes(b"\n".join(lines))
    elif how == "missing_test_image":
        (root / "test_images" / "te_002.png").unlink()


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing_file", r"train\.csv: image 'tr_1_004\.png' has no file"),
        ("duplicate_id", r"train\.csv: duplicate id 'tr_0_003\.png'"),
        ("singleton_label", r"label\(s\) with a single image: \['lonely'\]"),
        ("missing_column", r"train\.csv: missing column\(s\) \['label'\]"),
        ("not_csv", r"train\.csv: cannot be read as CSV"),
        ("traversal_id", r"image id '\.\./\.\./etc/passwd' has a folder part"),
        ("folder_id", r"train\.csv: image id 'sub/tr_0_000\.png' has a folder part; an id is a file name \(sub-folders "
                      r"are not supported: move the file into .*train/class0\)"),
        ("not_utf8", r"train\.csv:3: not UTF-8 text \(byte 0xe4\); save the file as UTF-8$"),
        ("submission_ids", r"sample_submission\.csv: ids differ from test\.csv"),
        ("missing_test_image", r"test\.csv: image 'te_002\.png' has no file"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, how, message):
    root = write_dataset(tmp_path / "d")
    corrupt(root, how)
    with pytest.raises(GrocerError, match=message):
        load_contract(data_params(root))


def test_resolve_refuses_path_parts(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    assert resolve(tmp_path, "a.png") == tmp_path / "a.png"
    assert resolve(tmp_path, "a") == tmp_path / "a.png"
    for bad in ("../a.png", "/etc/passwd", "sub/a.png", ".."):
        assert resolve(tmp_path, bad) is None
