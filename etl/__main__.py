from etl.cli import program

program()
