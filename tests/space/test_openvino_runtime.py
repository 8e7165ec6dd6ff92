"""The page's pruned side run from its OpenVINO export (``--pruned-runtime openvino``): what a CPU user would run.

Real optimum-intel and OpenVINO on a tiny random Llama pruned by magnitude (plumbing, not quality): the page's
token-by-token loop must give exactly the export's own greedy ``generate`` text (its KV cache carried and reset
per request), and a Space deployed this way gets the variable and the requirement it needs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from gradio_client import Client
from huggingface_hub import HfApi, hf_hub_download
from transformers import AutoTokenizer

from hfprune.errors import NoExportToServeError
from hfprune.export import ExportSettings, export_openvino, load_openvino
from hfprune.hub.space import OPENVINO_REQUIREMENT, deploy_space
from hfprune.space.serve import serve

from ..hub_mirror import free_port, publish
from .conftest import SpaceModels, make_pruned_folder

PROMPT = "the quick brown fox"
SETTINGS = ExportSettings(verify_langs=("en",), verify_sentences=2, greedy_tokens=4, speed=False)


@pytest.fixture(scope="module")
def exported(space_models: SpaceModels, tmp_path_factory) -> Path:
    pruned = tmp_path_factory.mktemp("ov-page") / "pruned"
    shutil.copytree(space_models.pruned, pruned)
    export_openvino(pruned, pruned / "openvino", SETTINGS)
    return pruned


def test_the_pruned_side_runs_the_export_and_writes_what_its_own_generate_writes(space_models, exported):
    running = serve(str(space_models.dense), str(exported), port=free_port(), block=False, pruned_runtime="openvino")
    try:
        client = Client(running.url, verbose=False)
        texts = []
        for _ in range(2):  # a second request starts a new sequence: the compiled model's state is reset
            final = client.predict(PROMPT, 12, 0.0, 0.95, 1, api_name="/generate")
            texts.append(final[1])
            assert "OpenVINO" in final[3] and "OpenVINO" not in final[2]
    finally:
        running.close()
    model = load_openvino(exported / "openvino")
    tokenizer = AutoTokenizer.from_pretrained(exported / "openvino")
    ids = torch.tensor([tokenizer(PROMPT)["input_ids"]])
    output = model.generate(ids, max_new_tokens=12, do_sample=False)
    expected = tokenizer.decode(output[0, ids.shape[1] :], skip_special_tokens=True)
    assert expected.strip() and texts[0] == texts[1] == expected.rstrip("\ufffd")


def test_deploying_the_openvino_runtime_needs_the_export_and_adds_what_the_space_runs_it_with(write_hub, tmp_path):
    plain = make_pruned_folder(tmp_path / "plain")
    publish(write_hub.mirror_root, "tester/no-export", plain)
    with pytest.raises(NoExportToServeError, match="openvino/openvino_model.xml"):
        deploy_space("tester/no-export", pruned_runtime="openvino")
    assert not HfApi().repo_exists("tester/no-export-demo", repo_type="space")  # nothing was created

    folder = make_pruned_folder(tmp_path / "with-export")
    export_openvino(folder, folder / "openvino", SETTINGS)
    publish(write_hub.mirror_root, "tester/with-export", folder)
    result = deploy_space("tester/with-export", pruned_runtime="openvino")

    assert result.variables["PRUNED_RUNTIME"] == "openvino"
    requirements = Path(hf_hub_download(result.space_id, "requirements.txt", repo_type="space")).read_text()
    assert requirements.endswith(f"\n{OPENVINO_REQUIREMENT}\n") and "transformers" in requirements
