"""cifarpipe: a reproducible DVC pipeline that trains ResNets on CIFAR-10 with the one-cycle policy.

One folder per concern. A stage lists in dvc.yaml the folders it runs, so an edit reruns exactly the stages
that run the edited folder (docs/reruns.md, `cifarpipe reruns`). A folder named after a stage (lr_find,
lr_pick, train, evaluate, gradcam, export, preview, aggregate) holds that stage's own code and pictures; the
others serve several stages:

    core/      params, paths, atomic files, errors, stage runner, dvclive  every stage
    download/  fetch the archive, check it, parse it                       download
    data/      the data set, its augmentation, its batches on the device   stats to gradcam
    model/     the two networks                                            preview to gradcam
    compute/   device, precision, GPU claims, the ranks of a run           lr_find, train, evaluate, gradcam
    optim/     the optimizers                                              lr_find, train
    schedule/  the one-cycle LR                                            train, aggregate
    scoring/   a model's logits, loss and accuracy over a loader           train, evaluate
    figures/   what every picture shares                                   the stages that draw
    tools/     the cifarpipe command: doctor, report, reruns, bench        no stage
"""
