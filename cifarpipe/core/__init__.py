"""What every stage shares: params.yaml and what each stage may read of it, the paths dvc.yaml declares, files
written atomically, the errors a user can fix, the stage runner, dvclive's logs."""
