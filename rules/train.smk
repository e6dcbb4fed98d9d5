# Both phases resume from results/{run}/checkpoints/ (not a declared output, so a killed
# or preempted job keeps it and the rerun continues; docs/cluster.md, "Resume"). The
# workflow deletes a phase's checkpoint once it has accepted the outputs (onstart/onsuccess
# hooks), never the job: its outputs may yet be refused (a kill before it exits).
# `settings`: what the weights depend on, a change reruns the phase; `runtime`: the rest
# (checkpoint interval, validation subset, ...), which reruns nothing.


rule train_phase1:
    input:
        **step_code("train"),
        packs=lambda w: f"{data_dir(w.run)}/packs",
    output:
        generator="results/{run}/phase1/generator.pt",
        metrics="results/{run}/phase1/metrics.csv",
    log:
        "results/{run}/logs/train_phase1.log",
    benchmark:
        "results/{run}/benchmarks/train_phase1.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        gpu=1,
        slurm_extra=TRAIN_SLURM_EXTRA,
    params:
        settings=lambda w: as_json(cfg.phase_params(config, w.run, 1)[0]),
        runtime=untracked(lambda w: as_json(cfg.phase_params(config, w.run, 1)[1])),
        checkpoints="results/{run}/checkpoints/phase1",
    shell:
        '"$PYTHON" {input.script:q} --packs {input.packs:q}'
        " --settings {params.settings:q} --runtime-settings {params.runtime:q}"
        " --checkpoints {params.checkpoints:q}"
        " --generator {output.generator:q} --metrics {output.metrics:q}"
        " --threads {threads} --log {log:q} --gpus {resources.gpu}"


rule train_phase2:
    input:
        **step_code("train"),
        packs=lambda w: f"{data_dir(w.run)}/packs",
        init=rules.train_phase1.output.generator,
    output:
        generator="results/{run}/phase2/generator.pt",
        discriminator="results/{run}/phase2/discriminator.pt",
        metrics="results/{run}/phase2/metrics.csv",
    log:
        "results/{run}/logs/train_phase2.log",
    benchmark:
        "results/{run}/benchmarks/train_phase2.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 4
    resources:
        gpu=1,
        slurm_extra=TRAIN_SLURM_EXTRA,
    params:
        settings=lambda w: as_json(cfg.phase_params(config, w.run, 2)[0]),
        runtime=untracked(lambda w: as_json(cfg.phase_params(config, w.run, 2)[1])),
        checkpoints="results/{run}/checkpoints/phase2",
    shell:
        '"$PYTHON" {input.script:q} --packs {input.packs:q}'
        " --settings {params.settings:q} --runtime-settings {params.runtime:q}"
        " --checkpoints {params.checkpoints:q}"
        " --init {input.init:q} --generator {output.generator:q}"
        " --discriminator {output.discriminator:q} --metrics {output.metrics:q}"
        " --threads {threads} --log {log:q} --gpus {resources.gpu}"
