"""Pretrains the demo's backbone on the pretext corpus (labels: scene content, distortions).

  python -m rsrl_jax.pretrain --config=configs/pretext.py [--out=DIR]

Writes DIR/demo_alexnet.npz (the backbone conv1..fc7, float16) and demo_alexnet.json (its
provenance: command, seed, commit, SHA-256, pretext accuracy per label, this config). The
package ships the result as `model.pretrained='shipped:demo_alexnet'`, which configs/demo.py
fine-tunes; the network (image size, width, fc_dim) must be the demo's. Pretraining always
uses Adam (one epoch of warm-up, then cosine decay to 0) on He-initialised weights
(`rsrl_jax.engine.pretrain`). About half an hour on a 2-core CPU.
"""

import ml_collections


def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0  # initialisation, photo order, dropout
    c.data = ml_collections.ConfigDict()
    c.data.image_size = 64
    c.model = ml_collections.ConfigDict()
    c.model.width = 0.5
    c.model.fc_dim = 512
    c.model.dropout_rate = 0.0
    c.model.compute_dtype = "float32"
    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 64
    c.train.eval_batch_size = 256
    c.train.learning_rate = 1e-3  # Adam's peak rate
    c.train.weight_decay = 0.0
    c.train.epochs = 30  # passes over the pretext training photos
    c.pretext = ml_collections.ConfigDict()
    c.pretext.seed = 1000  # the corpus: photos of seeds 1000 (training), 1001 (held out)
    c.pretext.num_train = 24000  # training photos (at least one batch)
    c.pretext.num_heldout = 2000  # held-out photos the pretext accuracy is measured on
    return c
