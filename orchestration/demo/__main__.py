from orchestration.demo.appstore import main

raise SystemExit(main())
