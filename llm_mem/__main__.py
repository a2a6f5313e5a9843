from llm_mem.cli import main

main()
