"""Every dataset is validated when it is loaded: one line naming the problem and the array, before training
(issue 12, item 3)."""

import numpy as np
import pytest
from helpers import REPO, run_cli, tiny_config


def _arrays(**changes):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.uniform(size=(40, 4, 4, 1)).astype(np.float32), "y_train": np.arange(40) % 4,
              "x_test": rng.uniform(size=(12, 4, 4, 1)).astype(np.float32), "y_test": np.arange(12) % 4}
    arrays.update(changes)
    return arrays


def _with(key, index, value):
    array = _arrays()[key].copy()
    array[index] = value
    return {key: array}


BAD_FILES = {
    "nan_in_train": (_with("x_train", 7, np.nan),
                     r"x_train holds 16 non-finite values \(NaN or inf\); the first in row 7"),
    "inf_in_test": (_with("x_test", 3, np.inf), r"x_test holds 16 non-finite values .*row 3"),
    "label_gap": (_with("y_train", 5, 99), r"y_train: class ids 4\.\.98 have no training example"),
    "label_beyond_num_classes": ({**_with("y_train", 5, 10), "num_classes": np.array(10)},
                                 r"y_train holds label 10 \(row 5\), outside \[0, 10\) for num_classes=10"),
    "test_label_unseen": (_with("y_test", 2, 4), r"y_test: class id 4 \(row 2\) has no training example"),
    "negative_label": (_with("y_train", 0, -1), r"y_train holds label -1 \(row 0\)"),
    "float_labels": ({"y_train": (np.arange(40) % 4).astype(np.float32)}, r"y_train must be integer class ids"),
    "length_mismatch": ({"y_train": np.arange(39) % 4}, r"x_train has 40 rows but y_train has 39"),
    "shape_mismatch": ({"x_test": np.zeros((12, 5, 5, 1), np.float32)},
                       r"x_train and x_test differ in shape: \(4, 4, 1\) vs \(5, 5, 1\)"),
    "empty_test": ({"x_test": np.zeros((0, 4, 4, 1), np.float32), "y_test": np.zeros((0,), np.int64)},
                   r"x_test is empty"),
    # Issue 24, item 5: a fractional class count was truncated, a huge one exhausted memory building the model.
    "num_classes_fraction": ({"num_classes": np.array(10.7)}, r"num_classes must be one whole number, not 10\.7; "
                             r"store the class count the labels use"),
    "num_classes_huge": ({"num_classes": np.array(10**9)}, r"num_classes=1000000000 is outside 1\.\.40 \(the "
                         r"number of training examples\)"),
    "num_classes_list": ({"num_classes": np.array([4, 4])}, r"num_classes must be one whole number, not int64 of "
                         r"shape \(2,\)"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_npz_data_is_refused_at_load_naming_the_array(tmp_path, case):
    from tfregimes.data import InvalidDatasetError, load_dataset
    changes, message = BAD_FILES[case]
    path = tmp_path / "data.npz"
    np.savez(path, **_arrays(**changes))
    with pytest.raises(InvalidDatasetError, match=message) as raised:
        load_dataset(f"npz:{path}")
    assert "\n" not in str(raised.value)


def test_a_good_npz_file_still_loads_with_its_declared_class_count(tmp_path):
    from tfregimes.data import load_dataset
    path = tmp_path / "data.npz"
    np.savez(path, **_arrays(num_classes=np.array(6)))
    assert load_dataset(f"npz:{path}").info.num_classes == 6  # classes 4 and 5 have no example: allowed
    np.savez(path, **_arrays())
    assert load_dataset(f"npz:{path}").info.num_classes == 4


@pytest.mark.parametrize("content, message", [
    (b"x_train,y_train\n1,2\n", "is not a .npz archive"),
    (b"PK\x03\x04truncated", "is not a .npz archive"),
])
def test_a_file_that_is_not_npz_is_named_as_such(tmp_path, content, message):
    from tfregimes.data import InvalidDatasetError, load_dataset
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(InvalidDatasetError, match=message):
        load_dataset(f"npz:{path}")


def test_an_npy_file_is_named_as_one_array_not_the_four_splits(tmp_path):
    from tfregimes.data import InvalidDatasetError, load_dataset
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((5, 3)))
    with pytest.raises(InvalidDatasetError, match=r"x\.npy: the file holds a single array \(numpy.save's .npy "
                                                  r"format, shape \(5, 3\)\), not a .npz archive.*numpy.savez"):
        load_dataset(f"npz:{path}")


def test_a_batch_larger_than_the_training_set_is_a_flag_error_before_training(tmp_path):
    from tfregimes.training import RunConfigError, train_and_evaluate
    with pytest.raises(RunConfigError, match=r"--batch_size=1024 exceeds the 512 training examples of synthetic"):
        train_and_evaluate(tiny_config(tmp_path / "run", batch_size=1024))
    assert not (tmp_path / "run").exists()


def test_train_cli_stops_on_bad_data_with_one_line_before_training(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, **_arrays(**_with("x_train", 7, np.nan)))
    completed = run_cli("tfregimes.train", "--flagfile=flags/smoke.cfg", f"--dataset=npz:{path}",
                        f"--model_dir={tmp_path / 'run'}")
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr and "diverged" not in completed.stdout.lower()
    assert f"error: npz:{path}: x_train holds 16 non-finite values" in completed.stderr
    assert not (tmp_path / "run").exists()


def test_train_cli_refuses_an_npy_file_in_one_line_leaving_no_run_directory(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(3))
    completed = run_cli("tfregimes.train", f"--flagfile={REPO / 'flags' / 'smoke.cfg'}", "--dataset=npz:x.npy",
                        cwd=tmp_path)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip().splitlines() == [
        "error: npz:x.npy: the file holds a single array (numpy.save's .npy format, shape (3,)), not a .npz archive "
        "of the four splits; save one with numpy.savez(PATH, x_train=..., y_train=..., x_test=..., y_test=...)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]  # No runs/ directory.
