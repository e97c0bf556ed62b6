from actsearch.cli import console_main

console_main()
