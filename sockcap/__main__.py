from sockcap.cli import main

main()
