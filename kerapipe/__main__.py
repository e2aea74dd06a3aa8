from kerapipe.cli import main

main()
