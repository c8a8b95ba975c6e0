from afcli.cli import main

main()
