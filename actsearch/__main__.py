from actsearch.faces.cli import console_main

console_main()
