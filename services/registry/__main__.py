from hivewire_services.registry.server import main

if __name__ == "__main__":
    main()
