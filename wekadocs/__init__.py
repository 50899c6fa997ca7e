"""wekadocs"""
