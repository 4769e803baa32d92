"""Bad input found when a run starts (files, folders, weights) gives one located line, exit 2."""
from __future__ import annotations

from pathlib import Path

import pytest

from semlink.cli import main
from semlink.errors import InputError
from semlink.images import SAMPLE_DIR
from semlink.metrics.lpips import lpips_unavailable_reason

BASE = """\
name: e
device: cpu
images: {source: IMAGES, size: 64}
snr: {points_db: [10]}
links:
  j2k: {type: classical, bandwidth: {channel_uses: 2000}}
"""


def _run(tmp_path, text, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    code = main(["run", str(path), "-q", "-o", str(tmp_path / "r.h5")])
    err = capsys.readouterr().err
    return code, err


def _check_one_line(code, err, expected):
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("semlink: error: "), err
    assert expected in err and "Traceback" not in err


def test_missing_image_folder(tmp_path, capsys):
    code, err = _run(tmp_path, BASE.replace("IMAGES", "no-such-folder"), capsys)
    _check_one_line(code, err, "images.source: folder")
    assert "no-such-folder does not exist" in err


def test_empty_image_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, err = _run(tmp_path, BASE.replace("IMAGES", "empty"), capsys)
    _check_one_line(code, err, "empty holds no image files")


def test_unreadable_image(tmp_path, capsys):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code, err = _run(tmp_path, BASE.replace("IMAGES", "imgs"), capsys)
    _check_one_line(code, err, "broken.png: cannot read image")


def test_real_preset_without_weights(tmp_path, capsys):
    text = BASE.replace("IMAGES", "sample").replace(
        "j2k: {type: classical, bandwidth: {channel_uses: 2000}}",
        "sc: {type: semantic, preset: stable-cascade-lite, weights: weights/none}")
    code, err = _run(tmp_path, text, capsys)
    _check_one_line(code, err, "weights/none: weights directory not found")
    assert not (tmp_path / "r.h5").exists()  # found before any task, no results file begun


def test_budget_too_small_for_a_frame_before_any_task(tmp_path, capsys):
    # The semantic link's tasks come first in the plan: the classical link's budget is checked
    # before them, and no results file is started.
    text = BASE.replace("IMAGES", "sample").replace("2000", "10").replace(
        "links:\n", "links:\n  sem: {type: semantic, preset: small}\n")
    code, err = _run(tmp_path, text, capsys)
    _check_one_line(code, err, "semlink: error: links.j2k.bandwidth: 10 channel uses")
    assert not (tmp_path / "r.h5").exists()


@pytest.mark.skipif(lpips_unavailable_reason("alex") is None, reason="LPIPS backbone installed")
def test_lpips_requested_but_unavailable(tmp_path, capsys):
    code, err = _run(tmp_path, BASE.replace("IMAGES", "sample") + "metrics: [psnr, lpips]\n",
                     capsys)
    _check_one_line(code, err, "metrics: lpips is unavailable")


def test_existing_output_needs_resume_or_overwrite(tmp_path, capsys):
    (tmp_path / "r.h5").write_bytes(b"")
    code, err = _run(tmp_path, BASE.replace("IMAGES", "sample"), capsys)
    _check_one_line(code, err, "results file exists; pass --resume")


PHOTO = str(SAMPLE_DIR / "02_astronaut.png")


@pytest.mark.parametrize("argv, expected", [
    (["transmit", PHOTO, "--snr-db", "nan"], "argument --snr-db: must be a number of dB or inf"),
    (["transmit", PHOTO, "--snr-db=-inf"], "argument --snr-db: must be a number of dB or inf"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "rician", "--k-factor-db", "inf"],
     "argument --k-factor-db: must be a finite number; got 'inf'"),
    (["transmit", PHOTO, "--snr-db", "5", "--steps", "0"], "argument --steps: must be an integer"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "classical", "--channel-uses", "-3"],
     "argument --channel-uses: must be an integer >= 1; got '-3'"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "classical", "--code-rate", "2"],
     "argument --code-rate: must be a code rate in [1/5, 948/1024], a number or a fraction like "
     "1/2; got '2'"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "classical", "--code-rate", "1/0"],
     "argument --code-rate: must be a code rate"),
    (["bench", "--batch", "1", "x"], "argument --batch: must be an integer >= 1; got 'x'"),
    (["bench", "--repeats", "0"], "argument --repeats: must be an integer >= 1"),
    (["bench", "--guidance", "inf"], "argument --guidance: must be a finite number >= 1"),
    (["bench", "--guidance", "0.5"], "argument --guidance: must be a finite number >= 1"),
    (["transmit", PHOTO, "--snr-db", "5", "--size", "40"],
     "argument --size: must be an image side in pixels, 64..4096 and a multiple of 32; got '40'"),
    (["transmit", PHOTO, "--snr-db", "5", "--size", "100000"], "argument --size: must be an image"),
    (["transmit", PHOTO, "--snr-db", "5", "--seed", "-1"], "argument --seed: must be an integer >= 0"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "classical", "--modulation", "5"],
     "argument --modulation: invalid choice: 5 (choose from 2, 4, 16, 64, 256)"),
    (["transmit", PHOTO, "--snr-db", "5", "--pilot-spacing", "0"],
     "argument --pilot-spacing: must be an integer >= 1; got '0'"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "rayleigh", "--tx-antennas", "3"],
     "argument --tx-antennas: invalid choice: 3 (choose from 1, 2)"),
    (["bench", "--size", "12", "--device", "cpu"], "argument --size: must be an image side"),
    (["bench", "--device", "tpu"], "argument --device: must be auto, cpu, cuda or cuda:N; got 'tpu'"),
    (["fid-stats", "sample", "--size", "20000", "-o", "x.npz"], "argument --size: must be an image side"),
    (["run", "s.yaml", "--shard", "9/8"], "argument --shard:"),
])
def test_bad_command_arguments_are_refused_before_running(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv + ["--out", "x.png"] if argv[0] == "transmit" else argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    # One line, as every error of semlink, pointing at --help for the usage.
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err, err
    assert err.startswith(f"semlink {argv[0]}: error: ") and err.endswith(
        f"(see semlink {argv[0]} --help)\n")


@pytest.mark.parametrize("argv, expected", [
    (["transmit", PHOTO, "--snr-db", "5", "--preset", "sd3"], "--preset: unknown preset 'sd3'"),
    (["transmit", PHOTO, "--snr-db", "5", "--modulation", "64"],
     "--modulation: applies to the classical link, not to --link semantic"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "classical", "--steps", "3"],
     "--steps: applies to the semantic link, not to --link classical"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "capacity", "--code-rate", "1/2"],
     "--code-rate: applies to the classical link, not to --link capacity"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "capacity", "--preset", "small"],
     "--preset: applies to the semantic link, not to --link capacity"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "classical", "--estimate", "lmmse"],
     "--estimate: applies to the semantic link, not to --link classical"),
    (["transmit", PHOTO, "--snr-db", "5", "--k-factor-db", "6"],
     "--k-factor-db: applies to --channel rician, not to --channel awgn"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "rician"],
     "--k-factor-db: --channel rician needs its K factor (dB)"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "ofdm", "--rx-antennas", "2"],
     "--rx-antennas: applies to --channel rayleigh or rician, not to --channel ofdm"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "rayleigh", "--rx-antennas", "65"],
     "--rx-antennas: Input should be less than or equal to 64; got 65"),
    (["transmit", PHOTO, "--snr-db", "5", "--tx-antennas", "2"],
     "--tx-antennas: applies to --channel rayleigh or rician, not to --channel awgn"),
    (["transmit", PHOTO, "--snr-db", "5", "--csi-error-var", "0.1"],
     "--csi-error-var: applies to --channel rayleigh or rician, not to --channel awgn"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "classical", "--harq-groups", "4"],
     "--harq-groups: groups code blocks for retransmissions; give --harq T > 1 too"),
    (["transmit", PHOTO, "--snr-db", "5", "--harq-groups", "4"],
     "--harq-groups: applies to the classical link, not to --link semantic"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "ofdm", "--pilot-spacing", "8"],
     "--pilot-spacing: applies to --channel awgn, rayleigh or rician, not to --channel ofdm "
     "(it estimates on its grid's pilots)"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "ofdm", "--frequency-offset", "0.01"],
     "--frequency-offset: applies to --channel awgn, rayleigh or rician, not to --channel ofdm "
     "(a scenario gives its oscillator in Hz)"),
    (["transmit", PHOTO, "--snr-db", "5", "--frequency-offset", "0.7"],
     "--frequency-offset: Input should be less than or equal to 0.5; got 0.7"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "rayleigh", "--phase-noise-linewidth",
      "0"], "--phase-noise-linewidth: Input should be greater than 0; got 0.0"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "capacity", "--phase-noise-linewidth",
      "0.001"], "--phase-noise-linewidth: the capacity link counts only the channel's noise; "
     "use --link classical"),
    (["transmit", PHOTO, "--snr-db", "5", "--amplifier-backoff-db", "50"],
     "--amplifier-backoff-db: Input should be less than or equal to 40; got 50.0"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "ofdm", "--normalized-doppler", "0.1"],
     "--normalized-doppler: applies to --channel rayleigh or rician, not to --channel ofdm"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "rayleigh", "--normalized-doppler", "0.7"],
     "--normalized-doppler: Input should be less than or equal to 0.5; got 0.7"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "rician", "--k-factor-db", "6",
      "--csi-error-var", "0.3"],
     "--csi-error-var: csi_error_var (0.3) must be below the scattered power 1 / (K + 1) = "
     "0.2008"),
    (["transmit", PHOTO, "--snr-db", "5", "--channel", "rayleigh", "--csi-error-var", "-0.1"],
     "--csi-error-var: Input should be greater than or equal to 0; got -0.1"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "capacity", "--harq", "2"],
     "--harq: applies to the classical link, not to --link capacity"),
    (["transmit", PHOTO, "--snr-db", "5", "--harq-combining", "ir"],
     "--harq-combining: applies to the classical link, not to --link semantic"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "classical", "--harq", "17"],
     "--harq: at most 16 sends; got 17"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "capacity", "--modulation", "16"],
     "--modulation: applies to the classical link, not to --link capacity"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "capacity", "--size", "64",
      "--channel-uses", "12289"],
     "--channel-uses: at most 3 x width x height = 12288 for --size 64"),
    (["transmit", PHOTO, "--snr-db", "5", "--link", "classical", "--size", "64",
      "--channel-uses", "20000"],
     "--channel-uses: at most 3 x width x height = 12288 for --size 64"),
    (["transmit", PHOTO, "--snr-db", "5", "--preset", "stable-cascade-lite"],
     "--weights: preset 'stable-cascade-lite' needs the folder of its weights"),
])
def test_arguments_the_models_refuse_give_one_line(argv, expected, tmp_path, capsys):
    out = ["--out", str(tmp_path / "x.png"), "--device", "cpu"] if argv[0] == "transmit" else []
    code = main(argv + out)
    _check_one_line(code, capsys.readouterr().err, expected)
    assert not (tmp_path / "x.png").exists()


def test_transmit_refuses_an_output_it_cannot_write_before_running(tmp_path, capsys, monkeypatch):
    from semlink.links import semantic

    monkeypatch.setattr(semantic, "SemanticLink", None)  # any use of the link would fail
    code = main(["transmit", PHOTO, "--snr-db", "5", "--out", str(tmp_path / "x.txt")])
    _check_one_line(code, capsys.readouterr().err, "--out: cannot write an image named")


def test_outputs_that_cannot_be_written_give_one_line(tmp_path, capsys):
    """An output path through a file (or any OSError from writing it) is a one-line error."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(BASE.replace("IMAGES", "sample"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = blocker / "sub" / "x"
    results = tmp_path / "r.h5"
    assert main(["run", str(scenario), "-q", "-o", str(results)]) == 0
    capsys.readouterr()
    for argv in (["run", str(scenario), "-q", "-o", f"{out}.h5"],
                 ["plot", str(results), "--out", str(out)],
                 ["export", str(results), "--json", f"{out}.json"],
                 ["export", str(results), "--csv", str(out)],
                 ["transmit", PHOTO, "--snr-db", "5", "--steps", "1", "--out", f"{out}.png"],
                 ["bench", "--size", "64", "--batch", "1", "--steps", "1", "--repeats", "1",
                  "--device", "cpu", "--json", f"{out}.json"]):
        code = main(argv)
        err = capsys.readouterr().err
        _check_one_line(code, err, "a file stands where a folder is needed")
        assert str(blocker) in err, argv


@pytest.mark.parametrize("component, expected", [
    ("semlink.channel.build_channel", "channel: `fft_size` must be in [1, 4096]; got 8192."),
    ("semlink.links.ber.ber_link_rate", "links.ber: `fft_size` must be in [1, 4096]; got 8192."),
])
def test_a_component_refusing_its_settings_is_one_line_before_any_task(
        component, expected, tmp_path, capsys, monkeypatch):
    # The schema states the components' ranges; whatever it misses, the components' own
    # ValueErrors at build time still name the link or the channel in one line.
    def refuse(*args, **kwargs):
        raise ValueError("`fft_size` must be in [1, 4096]; got 8192.\nSionna: more detail")

    monkeypatch.setattr(component, refuse)
    text = BASE.replace("IMAGES", "sample").replace("links:\n", "links:\n  ber: {type: ber}\n")
    code, err = _run(tmp_path, text, capsys)
    _check_one_line(code, err, expected)
    assert not (tmp_path / "r.h5").exists()


def test_validate_checks_every_file_and_reports_each(tmp_path, capsys):
    good, bad, worse = tmp_path / "good.yaml", tmp_path / "bad.yaml", tmp_path / "worse.yaml"
    good.write_text(BASE.replace("IMAGES", "sample"))
    bad.write_text(BASE.replace("IMAGES", "sample").replace("size: 64", "size: 65"))
    worse.write_text("snr: {points_db: [1]}\n")
    assert main(["validate", str(bad), str(good), str(worse)]) == 2
    captured = capsys.readouterr()
    assert captured.out == f"{good}: ok: 1 link(s): j2k (classical); channel awgn; 1 SNR " \
                           "point(s) 10..10 dB (esno); peak memory ~4.5 MiB per task\n"
    errors = captured.err.splitlines()
    assert [line.removeprefix("semlink: error: ").split(":")[0] for line in errors] == [
        str(bad), str(worse)]


def test_a_recipe_given_to_run_and_a_scenario_given_to_train_name_the_command(tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(BASE.replace("IMAGES", "sample"))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\ndata: {source: x}\nphases:\n  - {train: [stage_a], steps: 1}\n")
    _check_one_line(main(["run", str(recipe)]), capsys.readouterr().err,
                    f"{recipe}: is a training recipe (it has phases:), not a scenario; train with "
                    "semlink train")
    _check_one_line(main(["train", str(scenario)]), capsys.readouterr().err,
                    f"{scenario}: is a scenario (it has links:, no phases:); run it with semlink run")


def _info_raises(monkeypatch, error: BaseException) -> None:
    """Make ``semlink info`` raise ``error``: how main() treats it, whatever the command."""
    import semlink.cli.scenarios

    def command(args):
        raise error

    monkeypatch.setattr(semlink.cli.scenarios, "_cmd_info", command)


def test_a_reader_that_leaves_ends_the_command_quietly(monkeypatch, capsys):
    _info_raises(monkeypatch, BrokenPipeError(32, "Broken pipe"))
    assert main(["info", "x.h5"]) == 141
    assert capsys.readouterr().err == ""


def test_small_preset_given_a_folder_without_its_bundle(tmp_path, capsys):
    (tmp_path / "w").mkdir()
    code = main(["transmit", PHOTO, "--snr-db", "5", "--weights", str(tmp_path / "w"),
                 "--out", str(tmp_path / "x.png"), "--device", "cpu"])
    _check_one_line(code, capsys.readouterr().err, f"{tmp_path / 'w'}: holds no model.safetensors "
                    "(preset 'small' loads the bundle semlink train writes")


def test_plot_of_a_file_without_points_says_so(tmp_path, capsys):
    from semlink.results import ResultsStore

    ResultsStore(tmp_path / "empty.h5", {"scenario_text": ""}).save()
    code = main(["plot", str(tmp_path / "empty.h5"), "--out", str(tmp_path / "plots")])
    _check_one_line(code, capsys.readouterr().err,
                    "empty.h5: nothing to plot (0 finished points, none with BER or image metrics)")


@pytest.mark.parametrize("argv, expected", [
    (["fid-stats", "sample", "--size", "64", "-o", "{blocker}/stats.npz"],
     "--output: {blocker}: a file stands where a folder is needed"),
    (["fid-stats", "sample", "--size", "64", "--out", "{blocker}/stats.npz"],
     "--out: {blocker}: a file stands where a folder is needed"),
    (["bench", "--size", "64", "--batch", "1", "--json", "{tmp}"], "--json: {tmp} is a folder"),
    (["transmit", PHOTO, "--snr-db", "5", "--out", "{blocker}/x.png"],
     "--out: {blocker}: a file stands where a folder is needed"),
    (["export", "{results}", "--json", "{blocker}/s.json"],
     "--json: {blocker}: a file stands where a folder is needed"),
])
def test_outputs_are_checked_before_the_work(argv, expected, tmp_path, capsys, monkeypatch):
    import semlink.bench
    import semlink.metrics.fid
    from semlink.links import semantic
    from semlink.results import ResultsStore

    for module, name in ((semlink.bench, "run_bench"), (semantic, "SemanticLink"),
                         (semlink.metrics.fid, "inception_features")):
        monkeypatch.setattr(module, name, None)  # any work would fail with a TypeError
    (tmp_path / "file").write_text("not a folder")
    ResultsStore(tmp_path / "r.h5", {"scenario_text": ""}).save()
    fill = {"blocker": str(tmp_path / "file"), "tmp": str(tmp_path), "results": str(tmp_path / "r.h5")}
    code = main([a.format(**fill) for a in argv])
    _check_one_line(code, capsys.readouterr().err, expected.format(**fill))


def test_fid_of_a_folder_of_one_image_is_refused_before_any_task(tmp_path, capsys):
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a.png").write_bytes(Path(PHOTO).read_bytes())
    text = BASE.replace("IMAGES", "one") + "metrics: [psnr, fid]\n"
    code, err = _run(tmp_path, text, capsys)
    _check_one_line(code, err, "metrics: fid needs at least 2 images; images.source 'one' gives 1")
    assert not (tmp_path / "r.h5").exists()  # it ended in a traceback after every task before


@pytest.mark.parametrize("text, value", [("-1e3", -1000.0), ("-3", -3.0), ("-.5", -0.5),
                                         ("-1E-2", -0.01)])
def test_negative_snrs_in_any_float_notation_are_values(text, value):
    from semlink.cli import build_parser

    args = build_parser().parse_args(["transmit", "x.png", "--snr-db", text, "--out", "y.png"])
    assert args.snr_db == value  # argparse alone took "-1e3" for an option


def test_minus_inf_snr_is_refused_as_a_value(capsys):
    with pytest.raises(SystemExit):
        main(["transmit", PHOTO, "--snr-db", "-inf", "--out", "x.png"])
    assert "argument --snr-db: must be a number of dB or inf; got '-inf'" in capsys.readouterr().err


def test_validate_names_the_files_a_scenario_needs_that_are_not_here(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "w").mkdir()
    text = BASE.replace("IMAGES", "photos").replace("links:\n", (
        "links:\n  a: {type: semantic, preset: stable-cascade-lite, weights: w}\n"
        "  b: {type: semantic, preset: stable-cascade-lite, weights: /no/such/w}\n"))
    here = tmp_path / "here.yaml"
    here.write_text(text.replace("/no/such/w", "w"))
    there = tmp_path / "there.yaml"
    there.write_text(text.replace("photos", "pics/*.png") + "metrics: [psnr, fid]\n"
                     "fid_reference: stats.npz\n")
    assert main(["validate", str(here), str(there)]) == 0  # named, not refused: files may
    out = capsys.readouterr().out.splitlines()                # live only where it will run
    assert "not found here" not in out[0]
    assert out[1].endswith("; not found here: images.source pics/*.png, links.b.weights "
                           "/no/such/w, fid_reference stats.npz")


@pytest.mark.parametrize("argv", [["run", ""], ["validate", "s.yaml", " "], ["info", ""],
                                  ["run", "s.yaml", "-o", ""], ["bench", "--json", ""],
                                  ["fid-stats", "", "--size", "64", "-o", "a.npz"],
                                  ["weights", ""], ["export", "r.h5", "--csv", ""]])
def test_an_empty_path_is_refused_not_read_as_the_current_folder(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2  # fid-stats '' read the current folder; run -o '' was ignored
    assert "must be a file or folder name; got an empty one" in capsys.readouterr().err


def test_out_of_memory_is_one_line_with_what_to_shrink(monkeypatch, capsys):
    _info_raises(monkeypatch, RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you "
        "tried to allocate 800000000000 bytes.\nmore"))
    _check_one_line(main(["info", "x.h5"]), capsys.readouterr().err,
                    "info: out of memory ([enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator")
    _info_raises(monkeypatch, RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):  # a bug keeps its traceback
        main(["info", "x.h5"])


def test_a_multi_line_input_error_prints_its_first_line(monkeypatch, capsys):
    _info_raises(monkeypatch, InputError("x.pt: unreadable checkpoint (UnpicklingError: Weights "
                                         "only load failed.\n\nUnsupported operand 103\n)"))
    _check_one_line(main(["info", "x.h5"]), capsys.readouterr().err,
                    "x.pt: unreadable checkpoint (UnpicklingError: Weights only load failed.")


def test_run_device_option_overrides_the_scenario(tmp_path, monkeypatch):
    """``semlink run --device X`` runs on X whatever the scenario's ``device`` says (the
    scenario file itself is left as it is); without the option the file's device is used."""
    import semlink.sweep

    devices = []

    def run_scenario(scenario, text, **kwargs):
        devices.append(scenario.device)

    monkeypatch.setattr(semlink.sweep, "run_scenario", run_scenario)
    path = tmp_path / "s.yaml"
    path.write_text(BASE.replace("IMAGES", "sample").replace("device: cpu", "device: cuda:1"))
    assert main(["run", str(path), "-q", "--device", "cpu"]) == 0
    assert main(["run", str(path), "-q"]) == 0
    assert devices == ["cpu", "cuda:1"]


def test_transmit_accepts_an_infinite_snr_and_the_largest_budget(tmp_path, capsys):
    """``--snr-db inf`` means no noise (documented: "a number of dB or inf"), and
    ``--channel-uses`` may be as large as 3 x size^2 = 12288 at 64 px (one use per pixel
    value), that bound included."""
    out = tmp_path / "x.png"
    code = main(["transmit", PHOTO, "--snr-db", "inf", "--link", "classical", "--size", "64",
                 "--channel-uses", "12288", "--device", "cpu", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and out.exists()
    assert "12288 channel uses" in text and "at inf dB" in text, text
