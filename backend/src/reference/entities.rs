//! Reference data tables, loaded from `fixtures/` on every migrate.

pub mod area {
    use sea_orm::entity::prelude::*;

    /// A wijk (district) or buurt (neighbourhood) of Velsen as CBS defines them; the geometry is
    /// a GeoJSON geometry in WGS84.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "area")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        /// `wijk` or `buurt`.
        pub kind: String,
        pub name: String,
        /// For a buurt: the wijk it lies in.
        pub wijk_code: Option<String>,
        pub geometry: String,
        pub attribution: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod category {
    use sea_orm::entity::prelude::*;

    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "category")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        pub name: String,
        pub description: String,
        /// Feitcode domains this category accepts, `;`-separated (parkeren: `parkeren;stilstaan`).
        pub feitcode_domains: String,
        pub sort_order: i32,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod feitcode {
    use sea_orm::entity::prelude::*;

    /// A national offence code (feitcode) with the legal track the municipality handles it on,
    /// versioned by its valid-from date: tariffs and tracks change every year.
    #[sea_orm::model]
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "feitcode")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub code: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub valid_from: Date,
        pub valid_until: Option<Date>,
        pub category: String,
        pub domain: String,
        pub description: String,
        pub article: String,
        pub track: String,
        pub tariffs_eur: Json,
        pub source: String,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
