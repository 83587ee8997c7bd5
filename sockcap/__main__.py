from sockcap.entry import main

main()
