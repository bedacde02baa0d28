from tutoring_server.server import main

main()
