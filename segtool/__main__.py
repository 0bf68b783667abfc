from segtool.cli.app import main

main()
