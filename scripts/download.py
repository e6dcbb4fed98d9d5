raise SystemExit('not yet implemented')
