import pytest

from helpers import generation, models


def test_bundled_models_are_found():
    found = models.bundled_models()
    assert all(v != "missing" for v in found.values()), found


def test_classifier_has_one_output_per_label_and_names():
    model, tok = models.load_classifier(["a", "b", "c"])
    assert model.config.num_labels == 3 and model.config.id2label[2] == "c"
    assert tok("hello")["input_ids"][0] == tok.cls_token_id


def test_random_init_differs_from_pretrained():
    pre, _ = models.load_classifier(["a", "b"])
    rand, _ = models.load_classifier(["a", "b"], pretrained=False)
    w_pre = pre.bert.embeddings.word_embeddings.weight
    w_rand = rand.bert.embeddings.word_embeddings.weight
    assert w_pre.shape == w_rand.shape and not (w_pre - w_rand).abs().max() < 1e-6


def test_missing_local_path_gets_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.load_classifier(["a", "b"], model=str(tmp_path / "no_such_model"))


def test_unknown_hub_id_offline_says_how_to_download():
    with pytest.raises(OSError, match="WORKBOOK_ALLOW_DOWNLOADS"):
        models.load_classifier(["a", "b"], model="someone/not-a-real-model-xyz")


def test_single_label_is_refused():
    with pytest.raises(ValueError, match="at least 2 labels"):
        models.load_classifier(["only"])


def test_missing_model_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="requirements-models.txt"):
        models.minilm_dir()


@pytest.mark.slow
def test_chat_model_loads_from_cache_and_answers():
    model, tok = models.load_chat_model()
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    reply = generation.generate(
        model, tok, [generation.user_message("What is the capital of France?")], max_new_tokens=12
    )[0]
    assert "Paris" in reply
