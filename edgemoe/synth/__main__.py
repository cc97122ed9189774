from edgemoe.synth.cli import main

raise SystemExit(main())
