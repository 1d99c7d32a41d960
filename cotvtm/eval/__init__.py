"""Evaluation: the paper's metrics and baselines on any paired test set.

    metrics.py     FD/FAD (Fréchet), KL (softmax, sigmoid), IB score, EMS, P@k: plain numpy
    features.py    resampling and log-mel front ends (no torchaudio)
    nets.py        CNN14, VGGish and a small image net, named like the published checkpoints
    embedders.py   one evaluation model per metric, by KIND:LOCATION; paper and tiny presets
    testset.py     paired manifests -> items (video windows planned as in the soundtrack job)
    priors.py      prior checkpoints per method, or tiny ones distilled on the spot
    methods.py     CoT-VTM, its two ablations, caption2music, CoT2music, LLM2music
    measure.py     wall time and peak memory of a block (mapping vs MusicGen)
    score.py       every metric for every method
    report.py      Markdown/CSV/JSON table and matplotlib plots
    run.py         the whole run; cli.py its options
"""
