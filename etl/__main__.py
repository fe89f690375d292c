from affelios_import.cli.main import program

program()
