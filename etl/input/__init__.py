"""Reading the input: the file or sheet as text, its columns mapped to the contract's
fields, and each row checked."""
