from cdp_core.cli import main

main()
