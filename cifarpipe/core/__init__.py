"""What every stage shares: params, paths, atomic files, errors, the stage runner, dvclive."""
